"""Load one sweep from MLflow into pandas, once: the only place that reads tracked runs.

The layout read here is fixed by ``experiments.tracking_names``: the sweep is a parent run tagged
``asym.kind=sweep`` and ``asym.sweep=<name>``; its trials are child runs (``mlflow.parentRunId``)
tagged ``asym.kind=trial`` whose params are ``TrialSpec.params()`` and whose metrics are the
per-step histories named in ``common.metric_names``.

Only FINISHED child runs are analysed (a running, failed or killed trial would bias the seed
means); their names are kept in ``SweepData.unfinished`` so the report can say what it left out.
A metric logged twice at one step (a retried trial that continued its run) keeps the last value.
A reused trial's child run is a link (tag ``asym.reused_from``): its histories are read from the
run it links to, which computed them in an earlier sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from common.redact import redact
from experiments import tracking_names as tn
from experiments.studies import STUDIES

# The tidy metric frame: one row per (run, metric, step).
METRIC_COLUMNS = (
    "run_id", "trial", "label", "estimator", "alpha_pos", "alpha_neg", "seed", "model", "study",
    "metric", "step", "value",
)
# Params parsed to numbers; every other param stays a string.
FLOAT_PARAMS = ("alpha_pos", "alpha_neg", "entropy_coeff", "clip_low", "clip_high")
INT_PARAMS = ("seed", "steps")


@dataclass(frozen=True)
class SweepData:
    """A sweep's finished trials: one row per run in ``runs``, their histories in ``metrics``."""

    name: str
    study: str
    parent_run_id: str
    tracking_uri: str
    runs: pd.DataFrame  # run_id, trial, status, then every param (numbers parsed), sorted by label, seed
    metrics: pd.DataFrame  # METRIC_COLUMNS, sorted by label, seed, metric, step
    unfinished: tuple[str, ...] = field(default_factory=tuple)  # trial names left out, with status

    @property
    def labels(self) -> list[str]:
        """Method labels in table order: the study's declared order, then by alphas (see _label_order)."""
        return list(dict.fromkeys(self.runs["label"]))

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.runs["model"]))

    def metric_names(self) -> list[str]:
        return sorted(self.metrics["metric"].unique())

    @cached_property
    def _by_run_metric(self) -> dict[tuple[str, str], pd.Series]:
        return {
            key: pd.Series(rows["value"].to_numpy(), index=rows["step"].to_numpy())
            for key, rows in self.metrics.groupby(["run_id", "metric"], sort=False)
        }

    def history(self, run_id: str, metric: str) -> pd.Series:
        """One run's metric as a Series indexed by step (empty when the run did not log it)."""
        return self._by_run_metric.get((run_id, metric), pd.Series(dtype="float64"))


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient  # deferred: mlflow

    return MlflowClient(tracking_uri=tracking_uri)


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def find_sweep_run(client, experiment_id: str, name: str):
    """The sweep's parent run (the most recently started one if a name was reused)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tn.TAG_KIND}` = '{tn.KIND_SWEEP}' and tags.`{tn.TAG_SWEEP}` = '{_quote(name)}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def list_sweeps(tracking_uri: str | None = None) -> list[str]:
    """Names of the sweeps tracked in the store (for error messages and `asym report`'s help)."""
    uri = tracking_uri or tn.default_tracking_uri()
    client = _client(uri)
    experiment = client.get_experiment_by_name(tn.experiment_name())
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{tn.TAG_KIND}` = '{tn.KIND_SWEEP}'", max_results=1000,
    )
    return sorted({r.data.tags.get(tn.TAG_SWEEP, r.info.run_name) for r in runs})


def _child_runs(client, experiment_id: str, parent_run_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{tn.PARENT_RUN_ID}` = '{parent_run_id}' and tags.`{tn.TAG_KIND}` = '{tn.KIND_TRIAL}'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _parse_params(params: dict[str, str]) -> dict:
    row: dict = dict(params)
    for key in FLOAT_PARAMS:
        if key in row:
            row[key] = float(row[key])
    for key in INT_PARAMS:
        if key in row:
            row[key] = int(float(row[key]))
    return row


def _histories(client, run, row: dict) -> list[tuple]:
    """(run_id, trial, label, ..., metric, step, value) rows of every metric the run logged."""
    keys = sorted(run.data.metrics)
    out = []
    for key in keys:
        last: dict[int, tuple[int, float]] = {}  # step -> (timestamp, value): a retried step keeps the last
        for m in client.get_metric_history(run.info.run_id, key):
            if m.step not in last or m.timestamp >= last[m.step][0]:
                last[m.step] = (m.timestamp, m.value)
        ident = tuple(row.get(c) for c in METRIC_COLUMNS[:9])
        out.extend((*ident, key, step, value) for step, (_, value) in sorted(last.items()))
    return out


def _follow_link(client, run):
    """A reused trial's link run -> the run it links to (which logged its histories); None when
    that run is gone; any other run -> itself."""
    origin_id = run.data.tags.get(tn.TAG_REUSED_FROM)
    if not origin_id:
        return run
    from mlflow.exceptions import MlflowException  # deferred: mlflow

    try:
        origin = client.get_run(origin_id)
    except MlflowException:
        origin = None
    if origin is None or origin.info.lifecycle_stage == "deleted":
        return None  # reported as left out
    return origin


def check_store_exists(uri: str) -> None:
    """A local store (sqlite file or file: folder) must exist: reading must not create an empty one."""

    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else parsed.path
        path = "/" + path.lstrip("/") if uri.startswith("sqlite:////") else path
    elif parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else uri
    else:
        return
    if not Path(path).exists():
        raise ValueError(f"no tracking store at {path}; run `asym report` where `asym sweep` ran, or set MLFLOW_TRACKING_URI")


def _label_order(runs: pd.DataFrame) -> list[str]:
    """Methods in the order their study declares them (the paper's table order); others (grid
    cells, custom studies) after them, by alpha_pos, alpha_neg, then name."""

    declared: list[str] = []
    for study in dict.fromkeys(runs["study"]):
        if study in STUDIES:
            declared += [m.label for m in STUDIES[study].methods if m.label not in declared]
    rank = {label: i for i, label in enumerate(declared)}
    firsts = runs.drop_duplicates("label")
    keyed = sorted(firsts.itertuples(index=False), key=lambda r: (
        rank.get(r.label, len(rank)), float(r.alpha_pos), float(r.alpha_neg), r.label))
    return [r.label for r in keyed]


def open_sweep(name: str, uri: str):
    """(client, experiment id, parent run) of sweep ``name``; one-line ValueError for a missing store
    or an unknown sweep (the known ones listed, the URI without credentials)."""
    check_store_exists(uri)
    client = _client(uri)
    experiment = client.get_experiment_by_name(tn.experiment_name())
    parent = find_sweep_run(client, experiment.experiment_id, name) if experiment is not None else None
    if parent is None:
        known = list_sweeps(uri) if experiment is not None else []
        hint = f"known sweeps: {', '.join(known)}" if known else "run `asym sweep <study>` first"

        raise ValueError(f"no sweep named '{name}' in the tracking store {redact(uri)} ({hint})")
    return client, experiment.experiment_id, parent


def load_sweep(name: str, tracking_uri: str | None = None) -> SweepData:
    """Read a sweep's finished child runs, params and full metric histories, from MLflow.

    Raises ValueError (one line) for a missing store, an unknown sweep or a sweep without a
    finished trial.
    """
    uri = tracking_uri or tn.default_tracking_uri()
    client, experiment_id, parent = open_sweep(name, uri)
    children = _child_runs(client, experiment_id, parent.info.run_id)
    followed = [(_follow_link(client, r), r) for r in children]  # (where the histories are, the child)
    finished = [(o, r) for o, r in followed if o is not None and o.info.status == "FINISHED"]
    unfinished = tuple(
        f"{r.data.tags.get(tn.TAG_TRIAL, r.info.run_name)} "
        f"({'its reused run is gone' if o is None else o.info.status.lower()})"
        for o, r in followed if o is None or o.info.status != "FINISHED"
    )
    if not finished:
        detail = f"{len(children)} trial(s), none finished" if children else "no trials tracked"
        raise ValueError(f"sweep '{name}' has no finished trial to report ({detail}); wait for it or `asym sweep resume {name}`")

    run_rows, metric_rows = [], []
    for source, run in finished:  # a link's params name it in this sweep; its origin has the histories
        row = _parse_params(run.data.params)
        row["run_id"] = source.info.run_id
        row["trial"] = run.data.tags.get(tn.TAG_TRIAL, row.get("name", run.info.run_name))
        row["status"] = run.info.status
        row.setdefault("label", row.get("estimator", row["trial"]))
        row.setdefault("study", parent.data.tags.get(tn.TAG_STUDY, ""))
        for column in ("estimator", "model"):
            row.setdefault(column, "")
        for column in ("alpha_pos", "alpha_neg"):
            row.setdefault(column, float("nan"))
        row.setdefault("seed", 0)
        run_rows.append(row)
        metric_rows.extend(_histories(client, source, row))

    runs = pd.DataFrame(run_rows)
    leading = ["run_id", "trial", "status"]
    runs = runs[leading + [c for c in runs.columns if c not in leading]]
    label_order = {label: i for i, label in enumerate(_label_order(runs))}
    runs = runs.sort_values(["label", "seed"], key=lambda s: s.map(label_order) if s.name == "label" else s)
    metrics = pd.DataFrame(metric_rows, columns=list(METRIC_COLUMNS))
    metrics["step"] = metrics["step"].astype("int64")
    metrics["value"] = metrics["value"].astype("float64")
    metrics = metrics.sort_values(
        ["label", "seed", "metric", "step"], key=lambda s: s.map(label_order) if s.name == "label" else s,
    ).reset_index(drop=True)
    return SweepData(
        name=name,
        study=parent.data.tags.get(tn.TAG_STUDY, ""),
        parent_run_id=parent.info.run_id,
        tracking_uri=uri,
        runs=runs.reset_index(drop=True),
        metrics=metrics,
        unfinished=unfinished,
    )
