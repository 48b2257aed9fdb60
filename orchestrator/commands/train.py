"""`asym train`: one trial on the embedded engine, no Ray; progress bar, MLflow run, optional JSONL."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from orchestrator.commands.choices import InProcessBackendName as BackendName


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


def train(
    estimator: Annotated[str, typer.Option("--estimator", help="An estimator name (`asym estimators list`).")],
    steps: Annotated[int, typer.Option("--steps", help="RL steps.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the prompt stream and sampler.")] = 0,
    alpha_pos: Annotated[Optional[float], typer.Option("--alpha-pos", help="alpha+ (estimators that take it).")] = None,
    alpha_neg: Annotated[Optional[float], typer.Option("--alpha-neg", help="alpha- (estimators that take it).")] = None,
    entropy_coeff: Annotated[Optional[float], typer.Option("--entropy-coeff", help="Entropy bonus coefficient.")] = None,
    clip_high: Annotated[Optional[float], typer.Option("--clip-high", help="Upper PPO clip (Clip-higher: 0.28).")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="Shrink the run to seconds.")] = False,
    metrics_out: Annotated[Optional[Path], typer.Option("--metrics-out", help="Write one JSON line per step here.")] = None,
    device: Annotated[Device, typer.Option("--device", help="cpu, or cuda when a GPU is present.")] = Device.cpu,
    backend: Annotated[BackendName, typer.Option("--backend", help="Only the embedded engine trains in-process.")] = BackendName.embedded,
    config: Annotated[Optional[str], typer.Option("--config", help="A YAML file overriding preset values.")] = None,
) -> None:
    """Train one trial here (no sweep): a Rich progress bar, an MLflow run, optional --metrics-out JSONL."""
    from orchestrator.single import plan_single, train_standalone  # deferred: asym --help

    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    trial = plan_single(estimator=estimator, alpha_pos=alpha_pos, alpha_neg=alpha_neg, entropy_coeff=entropy_coeff,
                        clip_high=clip_high, steps=steps, seed=seed, smoke=smoke, backend=backend.value,
                        config_file=config)
    from orchestrator.mlflow_server import reap_orphans  # deferred: asym --help

    reap_orphans()  # an mlflow server a SIGKILLed sweep driver left on this store
    run_id = train_standalone(trial, device=device.value, metrics_out=metrics_out)
    typer.echo(f"trained {trial.name} ({trial.steps} steps); MLflow run {run_id}", err=True)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("train")(train)
