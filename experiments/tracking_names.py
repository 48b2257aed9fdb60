"""How sweeps and trials are laid out in MLflow and on disk: the contract between tracking and analysis.

It sits in ``experiments`` (below the orchestrator, which writes it, and analysis, which reads it).

- One MLflow experiment (``EXPERIMENT``, or $MLFLOW_EXPERIMENT_NAME) holds every sweep.
- A sweep is a parent run named after the sweep, tagged TAG_KIND=KIND_SWEEP, TAG_SWEEP=<name>,
  TAG_STUDY=<study>.
- A trial is a child run (tag ``mlflow.parentRunId``) named after the trial, tagged
  TAG_KIND=KIND_TRIAL, TAG_SWEEP, TAG_STUDY, TAG_TRIAL_KEY=<TrialSpec.key>, TAG_TRIAL=<name>;
  its params are ``TrialSpec.params()``; its run name is ``<label> s<seed>``; its metrics use ``common.metric_names`` with
  ``step`` = training step (0 = the starting model's evaluation).
- Reuse (``orchestrator.reuse``): a trial whose key already FINISHED in the store is not run again;
  the new sweep gets a link run instead, a FINISHED child run of its parent with the trial's tags and
  params, its origin's latest metrics and TAG_REUSED_FROM=<origin run id> (analysis reads the
  origin's histories). The parent lists the origin runs in TAG_REUSED_RUNS (comma-separated,
  continued in TAG_REUSED_RUNS.1, ... past a tag's length), the origin gets
  TAG_REUSED_IN.<sweep>=<parent run id>.
- On disk everything lives under ``./.asym`` (``ASYM_DIR``): ``sweeps/<name>`` (the Tune
  experiment), ``trials/<sweep>/<trial key>`` (work directories), ``mlflow/`` (the default store),
  ``logs/``, ``run/`` (pid files of this machine's servers).
- With a shared storage folder (``--storage PATH``, a path every node mounts), ``sweeps/``,
  ``trials/`` and (without $MLFLOW_TRACKING_URI) ``mlflow/`` live under PATH instead, so a trial
  retried on another node finds its checkpoints and any node can resume the sweep; ``logs/`` and
  ``run/`` stay on the machine (a pid is only meaningful where its process runs).
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from common.errors import UserError

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


def check_storage(text: str, on_this_machine: bool = True) -> Path:
    """The absolute folder of ``--storage`` (a path or a ``file://`` URI); anything else is a UserError.

    Object-store URIs are refused: trials write their engine checkpoints and metrics files, and the
    sweep its state, as plain files, so the storage must be a mounted file system (NFS, a cluster
    file system) on every node. ``on_this_machine=False`` (a sweep submitted to a cluster): the
    folder is the cluster's, so only its form is checked here.
    """

    text = text.strip()
    if not text:
        raise UserError("--storage needs a folder every node mounts, e.g. --storage /mnt/shared/asym")
    parsed = urlparse(text)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UserError(f"--storage {text}: a file:// URI names a local path (file:///mnt/shared), not a host")
        text = unquote(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # "C:" style drive letters are not schemes here
        raise UserError(f"--storage {text}: only a mounted folder (a path or file:// URI) is supported, not "
                        f"{parsed.scheme}://; trials write checkpoints as files, so mount the bucket on every node")
    if not on_this_machine:  # a cluster's folder: only the head can look at it
        if not Path(text).is_absolute():
            raise UserError(f"--storage {text}: give the cluster's shared folder as an absolute path")
        return Path(text)
    path = Path(text).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"--storage {text}: not a folder")
    if not path.exists() and not path.parent.is_dir():
        raise UserError(f"--storage {text}: its parent folder {path.parent} does not exist (is the share mounted?)")
    return path


def storage_root(storage: str | Path | None = None, workdir: Path | None = None) -> Path:
    """Where sweeps/ and trials/ live: the shared storage folder, else ./.asym."""
    return Path(storage) if storage else asym_root(workdir)


def local_store_dir(workdir: Path | None = None, storage: str | Path | None = None) -> Path:
    """Where the default (no $MLFLOW_TRACKING_URI) store lives: ./.asym/mlflow under the cwd, or
    the storage folder's mlflow/ (so a sweep on shared storage has all its state in one place)."""
    return storage_root(storage, workdir) / "mlflow"


def default_tracking_uri(workdir: Path | None = None, storage: str | Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI, else a local sqlite store under the working (or storage) directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{local_store_dir(workdir, storage) / 'mlflow.db'}"


def storage_tracking_uri(storage: str | None) -> str | None:
    """The tracking URI of a sweep run with ``--storage TEXT`` (checked), or None without one."""
    return default_tracking_uri(storage=check_storage(storage)) if storage else None
