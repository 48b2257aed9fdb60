"""The sweep's live view: a Tune callback that keeps one row per trial (state, step, latest metrics).

On a terminal it redraws a Rich table a few times a second; elsewhere (CI logs, pipes) it prints
one line per trial state change and never a line per step.
"""

from __future__ import annotations

import time
from typing import Any

import cloudpickle
from ray.tune import Callback
from rich.console import Console
from rich.live import Live
from rich.table import Table

from common import metric_names as M
from common.errors import first_line
from orchestrator.trial import spec_from_config

COLUMNS = (("entropy", M.ENTROPY), ("reward", M.REWARD_MEAN), ("eval acc", M.EVAL_MEAN_ACCURACY))


class LiveTable(Callback):
    def __init__(self, title: str, total_steps: dict[str, int] | None = None, console: Console | None = None):
        self.title = title
        self.total_steps = total_steps or {}
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self._live: Live | None = None
        self._last_draw = 0.0
        self._began: float | None = None

    def __getstate__(self) -> dict:  # Tune pickles its callbacks with the experiment
        state = dict(self.__dict__)
        state["console"] = None
        state["_live"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.console = Console(stderr=True, soft_wrap=True)

    # --- Tune hooks ---
    def setup(self, **info) -> None:
        self._began = time.time()
        if self.console.is_terminal:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.start()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._set(trial, "RUNNING")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        row = self._row(trial)
        row["step"] = result.get("step", row.get("step"))
        for label, key in COLUMNS:
            if key in result:
                row[label] = result[key]
        for key in (M.COST_GPU_SECONDS, M.COST_CPU_SECONDS):
            if key in result:
                row[key] = result[key]
        if result.get("skipped"):
            row["note"] = "already finished"
        self._redraw()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._set(trial, "DONE")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self._set(trial, "RETRYING", why=failure_line(_latest_error(trial)))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._set(trial, "ERROR", why=failure_line(_latest_error(trial)))

    def on_experiment_end(self, trials, **info) -> None:
        if self._live is None:
            self.console.print(f"[sweep] {self.ledger_line()}", highlight=False, markup=False)
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()
            self._live = None

    # --- drawing ---
    def ledger_line(self) -> str:
        """GPU-/CPU-hours used so far and projected at the end (each trial at its own pace)."""
        used, projected = {"gpu": 0.0, "cpu": 0.0}, {"gpu": 0.0, "cpu": 0.0}
        fractions: dict[str, float] = {}
        for name, row in self.rows.items():
            total, step = self.total_steps.get(name), row.get("step")
            fraction = 1.0 if row.get("state") == "DONE" else (min(1.0, step / total) if total and step else None)
            fractions[name] = fraction or 0.0
            for unit, key in (("gpu", M.COST_GPU_SECONDS), ("cpu", M.COST_CPU_SECONDS)):
                value = float(row.get(key) or 0.0)
                used[unit] += value
                projected[unit] += value / fraction if fraction else 0.0
        started = sum(1 for row in self.rows.values() if row.get("step") is not None)
        line = (f"GPU-h used {used['gpu'] / 3600:.3f}, projected {projected['gpu'] / 3600:.3f} | CPU-h used "
                f"{used['cpu'] / 3600:.3f}, projected {projected['cpu'] / 3600:.3f} (over {started} started trials)")
        done = sum(fractions.values())
        planned = max(len(self.total_steps), len(self.rows))
        if 0 < done < planned and self._began is not None:
            elapsed = time.time() - self._began
            line += f" | est. finish {time.strftime('%H:%M:%S', time.localtime(time.time() + elapsed * (planned - done) / done))}"
        return line

    def render(self) -> Table:
        table = Table(title=self.title, caption=self.ledger_line())
        for column in ("trial", "state", "step", *(label for label, _ in COLUMNS)):
            table.add_column(column, justify="left" if column in ("trial", "state") else "right")
        for name, row in sorted(self.rows.items()):
            total = self.total_steps.get(name)
            step = row.get("step")
            step_text = "-" if step is None else (f"{int(step)}/{total}" if total else str(int(step)))
            cells = [_fmt(row.get(label)) for label, _ in COLUMNS]
            note = _shorten(row.get("note") or "", 80)
            table.add_row(name, row.get("state", "PENDING") + (f" ({note})" if note else ""),
                          step_text, *cells)
        return table

    def _row(self, trial) -> dict[str, Any]:
        name = _trial_name(trial)
        return self.rows.setdefault(name, {"state": "PENDING"})

    def _set(self, trial, state: str, why: str | None = None) -> None:
        row = self._row(trial)
        if row.get("state") == state and not why:
            return
        row["state"] = state
        if why or state == "RUNNING":  # a retry's reason shows until the trial runs again
            row["note"] = why
        if self._live is None:
            extra = "" if row.get("step") is None else f" step {int(row['step'])}"
            acc = row.get("eval acc")
            extra += "" if acc is None else f" eval acc {acc:.3f}"
            extra += f": {why}" if why else ""
            self.console.print(f"[sweep] {_trial_name(trial)}: {state}{extra}", highlight=False, markup=False)
        self._redraw(force=True)

    def _redraw(self, force: bool = False) -> None:
        if self._live is None:
            return
        now = time.monotonic()
        if force or now - self._last_draw > 0.25:
            self._live.update(self.render())
            self._last_draw = now


def _trial_name(trial) -> str:
    try:
        return spec_from_config(trial.config).name
    except (AttributeError, KeyError, TypeError):
        return str(trial)


def _latest_error(trial) -> BaseException | None:
    """The exception of the trial's latest failure: Tune pickles it next to the trial's error.txt
    (Trial.handle_error) before it calls the callbacks."""
    try:

        with open(trial.pickled_error_file, "rb") as f:
            return cloudpickle.load(f)
    except Exception:  # no pickled error (a restore failure) or unreadable: the state alone is shown
        return None


def failure_line(error: BaseException | None, limit: int = 300) -> str | None:
    """'RuntimeError: verl job ... lost 4 actor(s) ...': the type and first line of what the trial
    raised (a RayTaskError's cause: the trainable's own exception), cut at ``limit`` characters."""
    if error is None:
        return None
    cause = getattr(error, "cause", None) or error
    return _shorten(f"{type(cause).__name__}: {first_line(cause)}" if str(cause).strip() else type(cause).__name__, limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"
