"""How a planned trial is named: the method fields an axis may set, and a readable slug of the values
that set a trial apart ("asym-ap0.9-an0.4", "grpo-ch0.28", "grpo-clip-cov")."""

from __future__ import annotations

from typing import Any

from estimators.registry import get_estimator
from estimators.schedules import slug
from experiments.spec import Method

METHOD_KEYS = ("estimator", "alpha_pos", "alpha_neg", "entropy_coeff", "use_preset_entropy_coeff", "clip_high",
               "loss_agg", "policy_loss")


PARAM_PREFIX = "params."
# "alpha_pos.<name>" / "alpha_neg.<name>": a schedule setting (estimators.schedules); trial_slug names it
SCHEDULE_PREFIXES = ("alpha_pos.", "alpha_neg.")


def short_key(key: str) -> str:
    return key[len(PARAM_PREFIX):] if key.startswith(PARAM_PREFIX) else key


def slug_value(value: Any) -> str:
    return _num(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def value_text(value: Any) -> str:
    """A value as labels show it: floats to 4 significant digits (enough to tell samples apart)."""
    if isinstance(value, float):
        return format(value, ".4g")
    return str(value)


def trial_slug(method: Method, alpha_pos: float, alpha_neg: float, entropy_coeff: float,
               clip_low: float, clip_high: float) -> str:
    """A readable name from the values that set the trial apart: "asym-ap0.9-an0.4", "grpo-ch0.28"."""
    tunable = get_estimator(method.estimator).tunable
    parts = [method.estimator]
    if "alpha_pos" in tunable:
        parts.append(f"ap{_num(alpha_pos)}")
    if "alpha_neg" in tunable:
        parts.append(f"an{_num(alpha_neg)}")
    if entropy_coeff:
        parts.append(f"ent{_num(entropy_coeff)}")
    if clip_high != clip_low:
        parts.append(f"ch{_num(clip_high)}")
    if method.loss_agg != "token-mean" and method.estimator != "dr-grpo":
        parts.append(method.loss_agg)
    if method.policy_loss != "vanilla":
        parts.append(method.policy_loss.replace("_", "-"))
    if method.schedule:

        parts.append(slug(method.schedule))
    return "-".join(parts)


def _num(value: float) -> str:
    return format(float(value), ".12g")
