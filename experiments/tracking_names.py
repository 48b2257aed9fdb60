"""How sweeps and trials are laid out in MLflow and on disk: the contract between tracking and analysis.

It sits in ``experiments`` (below the orchestrator, which writes it, and analysis, which reads it).

- One MLflow experiment (``EXPERIMENT``, or $MLFLOW_EXPERIMENT_NAME) holds every sweep.
- A sweep is a parent run named after the sweep, tagged TAG_KIND=KIND_SWEEP, TAG_SWEEP=<name>,
  TAG_STUDY=<study>.
- A trial is a child run (tag ``mlflow.parentRunId``) named after the trial, tagged
  TAG_KIND=KIND_TRIAL, TAG_SWEEP, TAG_STUDY, TAG_TRIAL_KEY=<TrialSpec.key>, TAG_TRIAL=<name>;
  its params are ``TrialSpec.params()``; its run name is ``<label> s<seed>``; its metrics use ``estimators.metric_names`` with
  ``step`` = training step (0 = the starting model's evaluation).
- Reuse (``orchestrator.reuse``): a trial whose key already FINISHED in the store is not run again;
  the new sweep gets a link run instead, a FINISHED child run of its parent with the trial's tags and
  params, its origin's latest metrics and TAG_REUSED_FROM=<origin run id> (analysis reads the
  origin's histories). The parent lists the origin runs in TAG_REUSED_RUNS (comma-separated,
  continued in TAG_REUSED_RUNS.1, ... past a tag's length), the origin gets
  TAG_REUSED_IN.<sweep>=<parent run id>.
- On disk everything lives under ``./.asym`` (``ASYM_DIR``): ``sweeps/<name>`` (the Tune
  experiment), ``trials/<sweep>/<trial key>`` (work directories), ``mlflow/`` (the default store),
  ``logs/``.
"""

import os
from pathlib import Path

ASYM_DIR = ".asym"
EXPERIMENT = "asym"
TAG_KIND = "asym.kind"
KIND_SWEEP = "sweep"
KIND_TRIAL = "trial"
TAG_SWEEP = "asym.sweep"
TAG_STUDY = "asym.study"
TAG_TRIAL_KEY = "asym.trial_key"
TAG_TRIAL = "asym.trial"
PARENT_RUN_ID = "mlflow.parentRunId"
# MLflow's own tags that shape its UI: the experiment's kind picks the page it opens on (3.x opens
# an experiment without one on its GenAI overview); a run's note is its description.
EXPERIMENT_KIND = "mlflow.experimentKind"
KIND_MODEL_TRAINING = "custom_model_development"
NOTE = "mlflow.note.content"
# A saved runs-table view (columns, filter) that `asym ui` links to: ``?viewStateShareKey=<key>``.
SHARED_VIEW_PREFIX = "mlflow.sharedViewState."
TRIALS_VIEW = "asym-trials"
# Trial params shown as columns of that view (``TrialSpec.params()`` names), then metrics.
VIEW_PARAMS = ("label", "estimator", "alpha_pos", "alpha_neg", "seed", "model", "study")
TAG_REUSED_FROM = "asym.reused_from"
TAG_REUSED_RUNS = "asym.reused_runs"
TAG_REUSED_IN = "asym.reused_in"


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)


def asym_root(workdir: Path | None = None) -> Path:
    """The working directory's ``.asym`` folder (absolute)."""
    return (workdir or Path.cwd()).resolve() / ASYM_DIR


def local_store_dir(workdir: Path | None = None) -> Path:
    """Where the default (no $MLFLOW_TRACKING_URI) store lives: ./.asym/mlflow under the cwd."""
    return asym_root(workdir) / "mlflow"


def default_tracking_uri(workdir: Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI, else a local sqlite store under the working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{local_store_dir(workdir) / 'mlflow.db'}"
