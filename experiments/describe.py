"""What `asym study list` and `asym study show` print: plain dicts (for --json) and Rich tables."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from estimators.registry import get_estimator
from experiments.plan import default_models, merge_axes, plan, study_methods
from experiments.plan_print import trials_json
from experiments.presets import MODELS_BY_BACKEND
from experiments.spec import Study, TrialSpec
from experiments.studies import STUDIES, get_study


def studies_overview() -> list[dict[str, Any]]:
    """One row per declared study: name, title, number of methods, default models per backend."""
    rows = []
    for study in STUDIES.values():
        rows.append({
            "name": study.name,
            "title": study.title,
            "methods": len(study_methods(study)),
            "alpha_grid": study.takes_alpha_grid,
            "models": {backend: list(default_models(study, backend)) for backend in MODELS_BY_BACKEND},
            "default_steps": study.default_steps,
        })
    return rows


def describe_study(name: str | Study, backend: str = "embedded", axes=()) -> tuple[dict[str, Any], list[TrialSpec]]:
    """A study's methods with their values and sources (JSON-ready), its axes, and its trials for
    the first seed (``name``: a built-in study's name, or a ``Study`` read from a file)."""
    study = get_study(name) if isinstance(name, str) else name  # an unknown name fails before torch is imported

    methods = []
    for method in study_methods(study):
        alpha_pos, alpha_neg = get_estimator(method.estimator).resolve_alphas(method.alpha_pos, method.alpha_neg)
        if method.use_preset_entropy_coeff:
            entropy = "preset entropy_coeff"
        else:
            entropy = method.entropy_coeff or 0.0
        methods.append({
            "label": method.label, "estimator": method.estimator, "alpha_pos": alpha_pos, "alpha_neg": alpha_neg,
            "entropy_coeff": entropy, "clip_high": method.clip_high if method.clip_high is not None else "= clip",
            "loss_agg": method.loss_agg, "policy_loss": method.policy_loss, "settings": dict(method.settings), "params": dict(method.params),
            "schedule": dict(method.schedule),
            "source": method.source,
        })
    first_seed = (study.seeds or (0,))[:1]
    trials = plan(study, backend=backend, seeds=first_seed, axes=axes)
    return {
        "name": study.name, "title": study.title, "description": study.description, "backend": backend,
        "origin": study.origin, "models": list(default_models(study, backend)), "default_steps": study.default_steps,
        "seeds": list(study.seeds or (0,)), "alpha_grid": study.takes_alpha_grid, "methods": methods,
        "axes": [{"key": a.key, "values": list(a.values), "source": a.source} for a in merge_axes(study.axes, axes)],
        "search": None if study.search is None else {
            "trials": study.search.trials, "metric": study.search.metric, "mode": study.search.mode,
            "ranges": [{"key": r.key, "low": r.low, "high": r.high, "log": r.log, "integer": r.integer,
                        "source": r.source} for r in study.search.ranges]},
        "trials": trials_json(trials),
    }, trials


def studies_table(rows: list[dict[str, Any]]):
    table = Table(title="Declared studies (asym study show NAME)")
    for column in ("name", "title", "methods", "models (embedded)", "models (verl)"):
        table.add_column(column, no_wrap=column == "name")
    for row in rows:
        methods = f"{row['methods']} (default grid)" if row["alpha_grid"] else str(row["methods"])
        table.add_row(row["name"], escape(row["title"]), methods, ", ".join(row["models"]["embedded"]),
                      ", ".join(row["models"]["verl"]))
    return table


def methods_table(desc: dict[str, Any]):
    """The methods with their values; sources follow as ``method_sources`` (they need the width)."""

    table = Table(title=escape(f"{desc['title']}: methods"))
    for column in ("method", "estimator", "alpha+", "alpha-", "entropy bonus", "clip high", "loss agg"):
        table.add_column(column, overflow="fold")
    for m in desc["methods"]:
        entropy = m["entropy_coeff"] if isinstance(m["entropy_coeff"], str) else (f"{m['entropy_coeff']:g}" if m["entropy_coeff"] else "-")
        clip_high = m["clip_high"] if isinstance(m["clip_high"], str) else f"{m['clip_high']:g}"
        table.add_row(escape(m["label"]), m["estimator"], _alpha_cell(m, "alpha_pos"), _alpha_cell(m, "alpha_neg"),
                      entropy, clip_high, m["loss_agg"])
    return table


def _alpha_cell(method: dict[str, Any], channel: str) -> str:
    """"0.9", or "0.9 linear (end 0.5)" for a scheduled alpha (estimators.schedules)."""

    own = {k.split(".", 1)[1]: v for k, v in method.get("schedule", {}).items() if k.startswith(channel + ".")}
    kind = own.pop("schedule", "fixed")
    text = f"{method[channel]:g}" + ("" if kind == "fixed" else f" {kind}")
    return escape(text + (f" ({', '.join(f'{k} {v}' for k, v in sorted(own.items()))})" if own else ""))


def method_sources(desc: dict[str, Any]) -> list[str]:
    """One line per method and axis: where its values come from (spec tags: [v2], [v1*], [der], [NF]
    = ours; file:line for a study file)."""
    lines = [f"{m['label']}: {m['source']}" for m in desc["methods"]]
    lines += [f"axis {a['key']} = {a['values']}: {a['source']}" for a in desc["axes"]]
    if desc["search"]:
        lines += [f"search {r['key']} in [{r['low']:g}, {r['high']:g}]{' (log)' if r['log'] else ''}: {r['source']}"
                  for r in desc["search"]["ranges"]]
    return lines
