"""`asym sweep <study>`, `asym sweep run FILE`, `asym sweep optuna`, `asym sweep resume NAME`.

Every command plans first (pure, ``experiments.plan``), so bad input fails with one line before
Ray, MLflow or any directory is touched. `--set key=v1,v2` adds an axis over any trial setting to
every command. `--dry-run` prints the plan; `--cluster` / `--address` submit the same command to a
Ray cluster (``cluster.submit``) instead of running it here. Any name that is not a sub-command is
taken as a built-in study's name (`asym study list`); `run FILE` runs a study file.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import replace
from enum import Enum
from typing import Annotated, List, Optional

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from orchestrator.commands.sweep_options import RerunOpt, SchedOpt, SchedulerName, SweepArgs, shared_options

FIXED_COMMANDS = ("run", "optuna", "resume")
STUDY_COMMAND = "__study__"


class SweepGroup(TyperGroup):
    """A group whose unknown sub-command names are study names (checked by the planner)."""

    def get_command(self, ctx: click.Context, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name.startswith("-"):
            return command
        template = super().get_command(ctx, STUDY_COMMAND)
        command = copy.copy(template)
        command.name = cmd_name
        command.hidden = False
        try:
            from experiments.studies import ORDER, study_title  # deferred: asym --help

            if cmd_name in ORDER:
                command.help = f"{study_title(cmd_name)}: run it as a sweep."
                command.short_help = None
        except Exception:
            pass
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        listed = [name for name in super().list_commands(ctx) if name != STUDY_COMMAND]
        try:
            from experiments.studies import ORDER  # deferred: asym --help

            return list(ORDER) + listed
        except Exception:  # the studies module is optional for help
            return listed


app = typer.Typer(cls=SweepGroup, no_args_is_help=True,
                  help="Run a declared study (isolation, flip, grid, main, backbones, kappa) or a study file "
                       "(`run FILE`) as a Ray Tune sweep tracked in MLflow; `optuna` searches ranges of any "
                       "numeric setting; `resume` continues a sweep.")


@app.command(STUDY_COMMAND, hidden=True, context_settings={"help_option_names": ["--help", "-h"]})
@shared_options
def sweep_study(
    ctx: typer.Context,
    alpha_pos: Annotated[Optional[str], typer.Option("--alpha-pos", help="grid: comma-separated alpha_pos values.")] = None,
    alpha_neg: Annotated[Optional[str], typer.Option("--alpha-neg", help="grid: comma-separated alpha_neg values.")] = None,
    scheduler: SchedOpt = SchedulerName.fifo,
    rerun: RerunOpt = False,
    *,
    args: SweepArgs,
) -> None:
    """Run the study named by this command as a sweep."""
    from experiments.parse import parse_float_list  # deferred: asym --help

    study = ctx.info_name
    trials, _ = _plan(study, args,
                      alpha_pos=parse_float_list(alpha_pos, name="--alpha-pos") if alpha_pos is not None else None,
                      alpha_neg=parse_float_list(alpha_neg, name="--alpha-neg") if alpha_neg is not None else None)
    from orchestrator.sweep_state import default_name  # deferred: asym --help

    options = _options(args, _name(args, lambda: default_name(study, trials)), study, scheduler=scheduler.value)
    _dispatch(ctx, trials, options, args, rerun=rerun)


@app.command("run")
@shared_options
def sweep_run(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A study file (YAML; see README 'Your own studies').")],
    search_trials: Annotated[Optional[int], typer.Option("--trials", help="With a `search:` section: how many Optuna trials (default: the file's).")] = None,
    scheduler: SchedOpt = SchedulerName.fifo,
    rerun: RerunOpt = False,
    *,
    args: SweepArgs,
) -> None:
    """Run a study file: its methods x axes x seeds as a grid, or its `search:` ranges with Optuna."""
    from experiments.study_file import load_study_file  # deferred: omegaconf

    study = load_study_file(file)
    if study.search is not None:

        search = study.search if search_trials is None else replace(study.search, trials=search_trials)
        _optuna(ctx, study, search, args)
        return
    if search_trials is not None:
        raise ValueError(f"--trials goes with a study file that has a `search:` section ({file} has none)")
    trials, _ = _plan(study, args)
    from orchestrator.sweep_state import default_name  # deferred: asym --help

    options = _options(args, _name(args, lambda: default_name(study.name, trials)), study.name, scheduler=scheduler.value)
    _dispatch(ctx, trials, options, args, rerun=rerun)


@app.command("optuna")
@shared_options
def sweep_optuna(
    ctx: typer.Context,
    alpha_pos_range: Annotated[str, typer.Option("--alpha-pos-range", help="lo,hi of alpha_pos.")] = "0,1",
    alpha_neg_range: Annotated[str, typer.Option("--alpha-neg-range", help="lo,hi of alpha_neg.")] = "0,1",
    ranges: Annotated[Optional[List[str]], typer.Option("--range", help="Search another numeric setting too: key=lo,hi (e.g. entropy_coeff=0,0.02, lr=1e-4,1e-2). Repeatable.")] = None,
    trials: Annotated[int, typer.Option("--trials", help="How many Optuna trials.")] = 8,
    search_seed: Annotated[int, typer.Option("--search-seed", help="Seed of Optuna's TPE sampler.")] = 0,
    *,
    args: SweepArgs,
) -> None:
    """Search AsymGRPO's alphas (and any --range) with Optuna (Ray Tune's OptunaSearch) toward eval/mean_accuracy."""
    from experiments.parse import parse_float_list  # deferred: asym --help
    from experiments.spec import Search, SearchRange  # deferred: asym --help
    from experiments.studies import OPTUNA_STUDY  # deferred: asym --help

    pos = _range(parse_float_list(alpha_pos_range, name="--alpha-pos-range"), "--alpha-pos-range")
    neg = _range(parse_float_list(alpha_neg_range, name="--alpha-neg-range"), "--alpha-neg-range")
    if trials < 1:
        raise ValueError(f"--trials must be >= 1, got {trials}")
    found = {"alpha_pos": SearchRange("alpha_pos", *pos, source="--alpha-pos-range"),
             "alpha_neg": SearchRange("alpha_neg", *neg, source="--alpha-neg-range")}
    for text in ranges or ():
        key, sep, bounds = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--range needs key=lo,hi, e.g. --range entropy_coeff=0,0.02; got {text!r}")
        lo, hi = _range(parse_float_list(bounds, name=f"--range {key.strip()}", nonnegative=False), f"--range {key.strip()}")
        found[key.strip()] = SearchRange(key.strip(), lo, hi, source="--range")
    search = Search(tuple(found.values()), trials=trials, seed=search_seed)
    _optuna(ctx, OPTUNA_STUDY, search, args)


def _optuna(ctx, study, search, args: SweepArgs) -> None:
    """An Optuna sweep: the planner checks both ends of every range now, and plans every sample later."""
    # planned at the ranges' low ends: a sampled key may be one the plan needs (a schedule's alpha_pos.end)
    _, plan_options = _plan(study, args, sample={r.key: r.low for r in search.ranges})
    from experiments.plan import plan_sampled  # deferred: omegaconf

    ends = [plan_sampled(study, plan_options, {r.key: getattr(r, end) for r in search.ranges})
            for end in ("low", "high")]
    template = ends[0]
    from orchestrator.sweep_state import default_name  # deferred: asym --help

    options = _options(args, _name(args, lambda: default_name(study.name, [template], repr(search))), study.name, search=search)
    _dispatch(ctx, [template], options, args, planner=(study, plan_options))


def _name(args: SweepArgs, default) -> str:
    return default() if args.name is None else args.name  # "" is refused by SweepOptions, not replaced


def _options(args: SweepArgs, name: str, study: str, **extra):
    from orchestrator.sweep_state import SweepOptions  # deferred: asym --help

    if args.as_json and not args.dry_run:
        raise ValueError("--json goes with --dry-run")
    if args.cluster and args.address:
        raise ValueError("pass --cluster FILE or --address ADDR, not both")
    return SweepOptions(name=name, study=study, max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
                        gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures,
                        storage=_storage(args.storage, args.cluster, args.address), **extra)


@app.command("resume")
def sweep_resume(
    name: Annotated[str, typer.Argument(help="The sweep's name (printed when it started).")],
    storage: Annotated[Optional[str], typer.Option("--storage", help="The shared folder the sweep was started with, as this node mounts it.")] = None,
) -> None:
    """Continue an interrupted sweep: Tune restores it; finished trials are not run again."""
    from orchestrator.sweep import resume_sweep  # deferred: asym --help

    _finish(resume_sweep(name, storage=_storage(storage, None, None)))


# --- shared steps ------------------------------------------------------------------------------------


def _plan(study, args: SweepArgs, *, alpha_pos=None, alpha_neg=None, sample=None):
    """(the planned trials, the planner's options: what a search replans each sample with; ``sample``
    is not among them)."""
    from backends import BACKENDS  # deferred: asym --help
    from experiments.parse import parse_seeds, parse_set  # deferred: asym --help
    from experiments.plan import plan  # deferred: omegaconf

    backend = args.backend.value
    gpus_setting = BACKENDS[backend].gpus_setting
    options = dict(
        backend=backend, models=[m.strip() for m in args.model.split(",")] if args.model else None,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else None, steps=args.steps, smoke=args.smoke,
        alpha_pos=alpha_pos, alpha_neg=alpha_neg, config_file=args.config,
        overrides={gpus_setting: int(args.gpus_per_trial)} if gpus_setting and args.gpus_per_trial else None,
        axes=tuple(parse_set(text) for text in args.sets or ()),
    )
    return plan(study, **options, sample=sample), options


def _storage(text: str | None, cluster: str | None, address: str | None) -> str | None:
    """--storage as an absolute folder; a cluster file's ``metadata: {storage:}`` when submitting to it."""
    from experiments.tracking_names import check_storage  # deferred: asym --help

    if text is None and cluster:
        from cluster.schema import load_cluster_file  # deferred: omegaconf

        text = load_cluster_file(cluster).storage
    return None if text is None else str(check_storage(text, on_this_machine=not (cluster or address)))


def _range(values: list[float], name: str) -> tuple[float, float]:
    if len(values) != 2 or not values[0] < values[1]:
        raise ValueError(f"{name} needs two increasing numbers lo,hi like 0,1; got {values}")
    return values[0], values[1]


def _dispatch(ctx: typer.Context, trials, options, args: SweepArgs, *, planner=None, rerun: bool = False) -> None:
    dry_run, as_json, cluster, address = args.dry_run, args.as_json, args.cluster, args.address  # checked by _options
    if dry_run:
        _print_plan(trials, options, as_json)
        return
    if cluster or address:
        from cluster.submit import submit_sweep  # deferred: omegaconf

        argv = _argv_without_cluster(ctx)
        if options.storage and "--storage" not in argv:  # from the cluster file's metadata
            argv += ["--storage", options.storage]
        if cluster and not options.storage:
            from cluster.schema import load_cluster_file  # deferred: omegaconf
            from orchestrator.sweep_launch import check_storage_for  # deferred: asym --help

            check_storage_for(load_cluster_file(cluster).max_nodes, None)
        job_id = submit_sweep(argv, cluster, address)
        typer.echo(job_id)
        return
    from orchestrator.sweep import run_sweep  # deferred: asym --help

    _finish(run_sweep(trials, options, planner=planner, rerun=rerun))


def _print_plan(trials, options, as_json: bool) -> None:
    from experiments.plan_print import trials_json, trials_table  # deferred: asym --help

    if as_json:

        rows = trials_json(trials, extra=_backend_fields)
        typer.echo(json.dumps(rows, indent=2, default=str))
        return

    title = f"sweep {options.name}: {len(trials)} trial(s)"
    if options.is_optuna:
        ranges = ", ".join(f"{r.key} in {[r.low, r.high]}" for r in options.search.ranges)
        title = (f"sweep {options.name}: {options.search.trials} Optuna trial(s) over {ranges}; each sample is "
                 f"planned like this trial (here at the ranges' low ends)")
    Console().print(trials_table(trials, title=title))


def _backend_fields(trial) -> dict:
    from backends import BACKENDS  # deferred: asym --help

    fields = BACKENDS[trial.backend].dry_run_fields_of()
    return fields(trial) if fields else {}


def _argv_without_cluster(ctx: typer.Context) -> list[str]:
    """The command line to run on the cluster: this command, its options in canonical form, minus
    --cluster / --address (parsed values, so it is the same plan that was validated here)."""
    argv = ["sweep", ctx.info_name]
    for param in ctx.command.params:
        kind = getattr(param, "param_type_name", "")
        if kind == "argument":
            argv.append(_text(ctx.params.get(param.name)))
            continue
        if kind != "option" or param.name in ("cluster", "address"):
            continue
        value = ctx.params.get(param.name)
        if value is None or value == param.default or (param.is_flag and not value) or value == () or value == []:
            continue
        for one in (value if isinstance(value, (list, tuple)) else [value]):
            one = one.value if isinstance(one, Enum) else one
            argv += [param.opts[0]] if param.is_flag else [param.opts[0], _text(one)]
    return argv


def _text(value) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _finish(outcome) -> None:
    from orchestrator.sweep_state import resume_command  # deferred: asym --help

    console = Console(stderr=True, soft_wrap=True)
    done = sum(r["status"] == "DONE" for r in outcome.results)
    reused = sum(bool(r.get("reused")) for r in outcome.results)
    if outcome.interrupted:
        console.print(f"sweep {outcome.name}: interrupted with {done}/{outcome.planned} trials done; the others "
                      f"ended KILLED; continue with `{resume_command(outcome.name, outcome.storage)}`", highlight=False)
        raise typer.Exit(130)
    console.print(f"sweep {outcome.name}: {done}/{len(outcome.results)} trials done"
                  + (f" ({reused} reused)" if reused else "") + "; MLflow parent run "
                  f"{outcome.parent_run_id} at {_ui_hint(outcome.tracking_uri, outcome.storage)}", highlight=False)
    if outcome.failed:
        for r in outcome.results:
            if r["status"] == "ERROR":
                console.print(f"  {r['name']}: {r['error']}", highlight=False, markup=False)
        raise typer.Exit(1)


def _ui_hint(uri: str, storage: str | None = None) -> str:
    from common.redact import redact  # deferred: asym --help

    if os.environ.get("MLFLOW_TRACKING_URI") or not uri.startswith("http://127.0.0.1"):
        return redact(uri)  # the user's own server (on loopback too): not the store `asym ui` serves
    where = f"{storage}/mlflow" if storage else ".asym/mlflow"
    return f"{where} (open it with `asym ui{' --storage ' + storage if storage else ''}`)"
