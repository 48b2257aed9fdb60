"""A sweep's options, outcome, name and place on disk, and the state file `asym sweep resume` reads.

Everything lives under ``./.asym`` (or ``--storage PATH``): the Tune experiment in ``sweeps/<name>``
with ``asym_sweep.json`` (what ``resume`` needs besides Tune's own state).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from common.errors import UserError
from experiments.spec import Search, SearchRange, TrialSpec
from experiments.tracking_names import storage_root

STATE_FILE = "asym_sweep.json"


SCHEDULERS = ("fifo", "asha")


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs (not what it runs: that is the trials)."""

    name: str
    study: str
    max_concurrent: int | None = None  # None: as many as the resources allow
    cpus_per_trial: float | None = None  # None: the backend's request (embedded: 1 CPU; verl: its preset's GPUs)
    gpus_per_trial: float | None = None
    scheduler: str = "fifo"
    max_failures: int = 2  # retries of a failed trial (FailureConfig)
    # An Optuna search (``asym sweep optuna``, a study file's ``search:``): its ranges and trials.
    search: Search | None = None
    storage: str | None = None  # a folder every node mounts (absolute); None: ./.asym on this machine

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ValueError(f"--max-concurrent must be >= 1, got {self.max_concurrent}")
        if self.cpus_per_trial is not None and not self.cpus_per_trial > 0:
            raise ValueError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise ValueError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")
        if self.max_failures < 0:
            raise ValueError(f"--max-failures must be >= 0, got {self.max_failures}")
        check_name(self.name)

    @property
    def is_optuna(self) -> bool:
        return self.search is not None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "SweepOptions":
        """The options ``asdict`` wrote into the sweep's state file."""
        raw = dict(raw)
        if raw.get("search") is not None:
            search = dict(raw["search"])
            search["ranges"] = tuple(SearchRange(**r) for r in search["ranges"])
            raw["search"] = Search(**search)
        return cls(**raw)


@dataclass
class SweepOutcome:
    name: str
    parent_run_id: str
    tracking_uri: str
    results: list[dict[str, Any]] = field(default_factory=list)  # one per trial: name, status, metrics
    interrupted: bool = False  # Ctrl-C (SIGINT): Tune saved its state and stopped the trials
    planned: int = 0  # trials the sweep runs in all (Tune creates them lazily)
    storage: str | None = None  # the shared folder it runs on (--storage)

    @property
    def failed(self) -> list[str]:
        return [r["name"] for r in self.results if r["status"] == "ERROR"]


def check_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ValueError(f"sweep name {name!r} may only use letters, digits, '-', '_' and '.'")
    return name


def default_name(study: str, trials: Sequence[TrialSpec], extra: str = "") -> str:
    """``<study>-<hash of the plan>``: the same command gives the same name, so it can be resumed."""
    blob = json.dumps(sorted(t.key for t in trials) + [extra])
    return f"{study}-{hashlib.sha1(blob.encode()).hexdigest()[:6]}"


def sweep_dir(name: str, workdir: Path | None = None, storage: str | None = None) -> Path:
    return storage_root(storage, workdir) / "sweeps" / name


def resume_command(name: str, storage: str | None = None) -> str:
    """What a user types to continue the sweep (shown in the banner and in errors)."""
    return f"asym sweep resume {name}" + (f" --storage {storage}" if storage else "")


def check_new_sweep(name: str, workdir: Path | None = None, storage: str | None = None) -> None:
    if sweep_dir(name, workdir, storage).exists():
        raise UserError(f"sweep '{name}' already exists in {sweep_dir(name, workdir, storage)}; continue it with "
                        f"`{resume_command(name, storage)}`, or choose another --name")


def write_state(trials: Sequence[TrialSpec], options: SweepOptions, workdir: Path | None) -> None:
    """What `resume` needs besides Tune's own state; written just before Tune starts, so a sweep
    that failed to start (no base model, no data) leaves its name free."""
    directory = sweep_dir(options.name, workdir, options.storage)
    directory.mkdir(parents=True, exist_ok=True)
    state = {"options": asdict(options), "trials": [t.to_dict() for t in trials]}
    tmp = directory / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=1, default=list))
    os.replace(tmp, directory / STATE_FILE)


def retuple(d: dict[str, Any]) -> dict[str, Any]:
    """JSON turned the settings' tuples into lists; TrialSpec keys hash them as tuples."""
    d = dict(d)
    d["settings"] = {k: _tuple(v) for k, v in (d.get("settings") or {}).items()}
    return d


def _tuple(value: Any) -> Any:
    return tuple(_tuple(v) for v in value) if isinstance(value, list) else value


def read_state(name: str, workdir: Path | None = None, storage: str | None = None) -> tuple[SweepOptions, list[TrialSpec]]:
    """The options and trials a sweep was started with (its state file)."""
    state = json.loads((sweep_dir(name, workdir, storage) / STATE_FILE).read_text())
    return SweepOptions.from_dict(state["options"]), [TrialSpec.from_dict(retuple(d)) for d in state["trials"]]
