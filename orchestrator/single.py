"""One trial without Ray (``asym train``): plan it, train it with a progress bar, track it in MLflow.

The trial is planned like a study's (a one-method ``Study``), so every check (estimator, alphas,
steps, preset) happens before anything runs. The run is a standalone MLflow run (tag
``asym.kind=train``, no parent). ``--metrics-out`` is written to a temporary file beside the
target and renamed at the end: the file is complete or absent.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from backends import get_backend
from common import metric_names as mn
from common.errors import UserError
from common.numbers import finite_nonnegative
from estimators.registry import get_estimator
from experiments import tracking_names as names
from experiments.spec import Method, Study, TrialSpec
from orchestrator import tracking, trial_run
from orchestrator.trial import StepReporter, run_tracked


def plan_single(*, estimator: str, alpha_pos: float | None, alpha_neg: float | None, entropy_coeff: float | None,
                clip_high: float | None, steps: int, seed: int, smoke: bool, backend: str = "embedded",
                config_file: str | None = None) -> TrialSpec:
    """The one trial ``asym train`` runs; one-line ValueError on bad input."""

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"--steps must be an integer >= 1, got {steps!r}")
    est = get_estimator(estimator)
    if entropy_coeff is not None:
        finite_nonnegative("--entropy-coeff", entropy_coeff)
    method = Method(label=est.label, estimator=estimator, alpha_pos=alpha_pos, alpha_neg=alpha_neg,
                    entropy_coeff=entropy_coeff, clip_high=clip_high)
    study = Study(name="train", title="asym train", description="one trial from the command line", methods=(method,))
    from experiments.plan import plan  # deferred: omegaconf

    (trial,) = plan(study, backend=backend, seeds=[seed], steps=steps, smoke=smoke, config_file=config_file)
    return trial


class MetricsFile:
    """JSON lines written to a temp file in the target's directory, renamed into place on ``commit``."""

    def __init__(self, target: Path):
        self.target = Path(target)
        if self.target.is_dir():
            raise UserError(f"--metrics-out {self.target} is a directory; give a file path")
        parent = self.target.parent
        if not parent.is_dir():
            raise UserError(f"--metrics-out: directory {parent} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{self.target.name}.", suffix=".tmp")
        except OSError as exc:
            raise UserError(f"--metrics-out: cannot write in {parent} ({exc.strerror})") from None
        self.tmp = Path(tmp)
        self.handle = os.fdopen(fd, "w")

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        self.handle.write(json.dumps({"step": step, **metrics}, allow_nan=True) + "\n")

    def commit(self) -> None:
        self.handle.close()
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


def check_device(device: str) -> str:
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch  # deferred: torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is visible here; use --device cpu")
    return device


def train_standalone(trial: TrialSpec, *, device: str = "cpu", metrics_out: Path | None = None,
                     threads: int | None = None, show_progress: bool = True) -> str:
    """Run ``trial`` here; returns the MLflow run id. Everything is checked before training starts."""

    check_device(device)
    uri = names.default_tracking_uri()
    if "MLFLOW_TRACKING_URI" in os.environ:  # the default local store is created below
        tracking.check_tracking_uri(uri)
    out = MetricsFile(metrics_out) if metrics_out is not None else None
    try:
        if "MLFLOW_TRACKING_URI" not in os.environ:
            names.local_store_dir().mkdir(parents=True, exist_ok=True)
        client = tracking.make_client(uri)
        experiment_id = tracking.ensure_experiment(client, _artifact_root())
        run = trial_run.TrialRun.open(client, experiment_id, trial, sweep=None, parent_run_id=None)
        backend = get_backend(trial.backend)
        backend.configure_runtime(threads or os.cpu_count() or 1, 1 if device == "cuda" else 0)
        with _progress(trial, show_progress) as advance, tempfile.TemporaryDirectory(prefix="asym-train-") as workdir:
            def forward(metrics: dict[str, float]) -> None:
                advance(metrics)

            reporter = StepReporter(run, forward=forward)
            if out is not None:
                reporter = _Tee(reporter, out)
            run_tracked(trial, backend, run, Path(workdir), reporter)
    except BaseException:
        if out is not None:
            out.discard()
        raise
    if out is not None:
        out.commit()
    return run.run_id


class _Tee:
    """The reporter, plus the step's raw metrics to the metrics file."""

    def __init__(self, reporter, out: MetricsFile):
        self.reporter, self.out = reporter, out

    def __call__(self, step: int, metrics) -> None:
        self.reporter(step, metrics)
        self.out.write(step, {k: float(v) for k, v in metrics.items()})


class _progress:
    """A Rich progress bar over the steps (silent when not asked for)."""

    def __init__(self, trial: TrialSpec, show: bool):
        self.trial, self.show = trial, show

    def __enter__(self):
        if not self.show:
            return lambda metrics: None

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"), transient=False)
        self.progress.start()
        task = self.progress.add_task(self.trial.name, total=self.trial.steps, info="")

        def advance(metrics: dict[str, float]) -> None:
            info = " ".join(f"{label} {metrics[key]:.3f}" for label, key in
                            (("entropy", mn.ENTROPY), ("reward", mn.REWARD_MEAN),
                             ("eval", mn.EVAL_MEAN_ACCURACY)) if key in metrics)
            self.progress.update(task, completed=int(metrics.get("step", 0)), info=info)

        return advance

    def __exit__(self, *exc) -> None:
        if self.show:
            self.progress.stop()


def _artifact_root() -> str | None:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (names.local_store_dir().resolve() / "artifacts").as_uri()
