"""A plan as the user sees it (``--dry-run``): JSON rows with every field, or a Rich table."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from rich import box
from rich.markup import escape
from rich.table import Table

from experiments.naming import METHOD_KEYS, PARAM_PREFIX, value_text
from experiments.spec import TrialSpec

ExtraFields = Callable[[TrialSpec], Mapping[str, Any]]


def trials_json(trials: Sequence[TrialSpec], extra: ExtraFields | None = None) -> list[dict[str, Any]]:
    """JSON-ready dicts: every TrialSpec field (settings as a mapping) plus ``key``; ``extra(trial)``
    adds backend fields (the verl renderer adds ``entrypoint`` and ``overrides``)."""
    out = []
    for trial in trials:
        row = trial.to_dict()
        row["settings"] = _thawed(row["settings"])
        row["key"] = trial.key
        if extra is not None:
            row.update(extra(trial))
        out.append(row)
    return out


def trials_table(trials: Sequence[TrialSpec], title: str | None = None):
    """A Rich table of the plan, one row per trial, in run order.

    The name carries the estimator, the alphas that vary and the model (when a plan has several);
    the JSON form (``trials_json``) has every field, the key included.
    """

    models = sorted({t.model for t in trials})
    backends = sorted({t.backend for t in trials})
    caption = f"backend {', '.join(backends)}; model {', '.join(models)}" if trials else "no trials"
    table = Table(title=escape(title) if title else None, caption=caption, box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("name", no_wrap=True)
    table.add_column("alpha+", justify="right")
    table.add_column("alpha-", justify="right")
    table.add_column("seed", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("other settings", overflow="fold")
    for i, t in enumerate(trials, 1):
        other = []
        if t.entropy_coeff:
            other.append(f"entropy {t.entropy_coeff:g}")
        other.append(f"clip {t.clip_low:g}" + (f"/{t.clip_high:g}" if t.clip_high != t.clip_low else ""))
        if t.loss_agg != "token-mean":
            other.append(t.loss_agg)
        if t.policy_loss != "vanilla":
            other.append(f"loss {t.policy_loss}")
        other += [f"{k}={value_text(v)}" for k, v in t.axes if k not in METHOD_KEYS]
        other += [f"{k}={value_text(v)}" for k, v in t.estimator_params if f"{PARAM_PREFIX}{k}" not in dict(t.axes)]
        other += [f"{k}={value_text(v)}" for k, v in t.schedule if k not in dict(t.axes)]
        table.add_row(str(i), t.name, f"{t.alpha_pos:g}", f"{t.alpha_neg:g}", str(t.seed), str(t.steps),
                      ", ".join(other))
    return table


def _thawed(value: Any) -> Any:
    """Settings for JSON: the ``val_n``-style (key, n) pairs back into a mapping."""
    if isinstance(value, dict):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple) and value and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                                  for p in value):
        return {k: _thawed(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value
