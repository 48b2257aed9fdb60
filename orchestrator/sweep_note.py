"""The sweep's parent run description (``mlflow.note.content``), kept current while the sweep runs:
the command, the study, every trial with its status, read back from MLflow every few seconds."""

from __future__ import annotations

import threading
from typing import Sequence

from common import metric_names as M
from experiments import tracking_names as names
from orchestrator.tracking import find_runs


class SweepNote:
    """Keeps the sweep's parent-run description current, from a daemon thread of the driver.

    Every ``every_s`` it reads the sweep's child runs back from MLflow (so a resumed sweep, or
    trials retried on other nodes, show as they are) and rewrites ``mlflow.note.content`` when it
    changed: the command, the study, each trial's status. Tracking errors are ignored here (an
    outage only delays the note); ``stop`` writes it a last time.
    """

    def __init__(self, client, experiment_id: str, run_id: str, *, sweep: str, study: str,
                 planned: Sequence[str], every_s: float = 5.0):
        self.client, self.experiment_id, self.run_id = client, experiment_id, run_id
        self.sweep, self.study, self.planned, self.every_s = sweep, study, list(planned), every_s
        self.last_text: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="asym-sweep-note", daemon=True)

    def start(self) -> "SweepNote":
        self.update()
        self._thread.start()
        return self

    def stop(self, status: str | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every_s + 15)
        self.update(status)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.update()

    def update(self, sweep_status: str | None = None) -> bool:
        try:
            parent = self.client.get_run(self.run_id)
            runs = find_runs(self.client, self.experiment_id, {names.TAG_KIND: names.KIND_TRIAL, names.TAG_SWEEP: self.sweep})
            text = self.text(runs, parent.data.params.get("command"), sweep_status)
            if text != self.last_text:
                self.client.set_tag(self.run_id, names.NOTE, text)
                self.last_text = text
            return True
        except Exception:  # the server is away: the next round (or ``stop``) writes it
            return False

    def text(self, runs: list, command: str | None, sweep_status: str | None = None) -> str:
        by_name = {r.data.tags.get(names.TAG_TRIAL): r for r in runs}
        rows, counts = [], {}
        for name in [*self.planned, *sorted(n for n in by_name if n not in self.planned)]:
            run = by_name.get(name)
            status = run.info.status if run is not None else "PENDING"
            counts[status] = counts.get(status, 0) + 1
            acc = run.data.metrics.get(M.EVAL_MEAN_ACCURACY) if run is not None else None
            shown = run.info.run_name if run is not None else name
            rows.append(f"| {shown} | {status} | {'-' if acc is None else f'{acc:.3f}'} |")
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        lines = [f"**asym sweep `{self.sweep}`**: study `{self.study}`, {len(rows)} trials ({summary})"
                 + (f"; sweep {sweep_status.lower()}" if sweep_status else "") + ".", ""]
        if command:
            lines += [f"Command: `{command}`", ""]
        lines += [f"Continue it with `asym sweep resume {self.sweep}`; report with `asym report {self.sweep}`.", "",
                  "| trial | status | eval accuracy |", "|---|---|---|", *rows]
        return "\n".join(lines)
