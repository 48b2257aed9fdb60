"""`asym probe prop1`: Proposition 1's one-update probe on the embedded engine (``tinyrlvr.probe``).

Plans (``experiments.probe``; every check before anything is written), runs with a Rich progress bar
and MLflow tracking (``orchestrator.probe``: one parent run, a child per seed), then writes
``DIR/probe.csv``, the figures and the agreement table (``analysis.probe``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="One-update probes of the paper's propositions (embedded engine).", no_args_is_help=True)


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got '{text}'") from None


@app.command("prop1")
def prop1(
    out: Annotated[Path, typer.Option("--out", help="Folder for probe.csv, the figures and agreement.md.")],
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds (prompt stream and sampling).")] = "0",
    at: Annotated[str, typer.Option("--at", help="Steps of the reference trajectory to probe (0 = base model).")] = "0,20,50",
    methods: Annotated[Optional[str], typer.Option("--methods", help="Estimators, name or name:alpha+:alpha- "
                                                   "(default: the paper's isolation and flip-test methods).")] = None,
    reference: Annotated[str, typer.Option("--reference", help="The estimator the trajectory trains with.")] = "reinforce",
    optimizers: Annotated[str, typer.Option("--optimizers", help="sgd, sgd-clip, adamw (comma-separated).")] = "sgd,sgd-clip,adamw",
    controls: Annotated[str, typer.Option("--controls", help="none, center_groups (comma-separated).")] = "none,center_groups",
    model: Annotated[str, typer.Option("--model", help="An embedded model preset.")] = "embedded-tiny",
    steps: Annotated[Optional[int], typer.Option("--steps", help="Length of the reference trajectory (default: the preset's).")] = None,
    sgd_lr: Annotated[Optional[float], typer.Option("--sgd-lr", help="Plain SGD's step (sgd, sgd-clip).")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="The smoke-size model and batch (seconds).")] = False,
    threads: Annotated[Optional[int], typer.Option("--threads", help="torch threads (default: torch's).")] = None,
    warmup_seed: Annotated[Optional[int], typer.Option("--warmup-seed", help="Another base-model build: the warm-up's "
                                                       "seed (default: the preset's; a new one is built on first use).")] = None,
) -> None:
    """Fork the policy at --at steps, apply one update per method x optimizer x control, compare with Prop. 1."""
    from experiments.probe import DEFAULT_METHODS, DEFAULT_SGD_LR, plan_probe  # deferred: asym --help
    from orchestrator.probe import check_out, run_plan  # deferred: asym --help

    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    if warmup_seed is not None and warmup_seed < 0:
        raise ValueError(f"--warmup-seed must be >= 0, got {warmup_seed}")
    plan = plan_probe(seeds=_ints(seeds, "--seeds"), at=_ints(at, "--at"), methods=methods or DEFAULT_METHODS,
                      reference=reference, optimizers=optimizers, controls=controls, model=model, smoke=smoke,
                      steps=steps, sgd_lr=DEFAULT_SGD_LR if sgd_lr is None else sgd_lr, threads=threads,
                      settings={} if warmup_seed is None else {"warmup_seed": warmup_seed})
    out = check_out(out)
    parent_id, rows = run_plan(plan, out)
    from analysis.probe import write_report  # deferred: matplotlib, numpy, pandas
    from orchestrator.probe import CSV_NAME, attach  # deferred: asym --help

    written = write_report(out / CSV_NAME, out)
    attach(parent_id, [out / CSV_NAME, *written])
    typer.echo(f"{len(rows)} rows in {out / CSV_NAME}; figures and agreement.md beside it; MLflow run {parent_id}",
               err=True)
