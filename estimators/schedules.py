"""Alpha schedules: alpha_pos / alpha_neg as a pure function of (step, batch statistics, state).

A schedule is declared per channel by flat settings ``alpha_pos.<name>`` / ``alpha_neg.<name>``
(``alpha_pos.schedule=linear``, ``alpha_pos.end=0.5``), so the planner, the trial key and Optuna
treat them like any other setting. ``parse`` checks them (one-line ValueError, no torch import:
the planner calls it); ``advance`` is the per-step rule both backends call, before the step's
advantages; its state (the current alphas) is a dict of floats the engine keeps in its checkpoint.

Kinds (the start value is the method's alpha unless ``start`` is given):
- ``fixed``: the start value every step (the paper's setting).
- ``linear`` / ``cosine``: from ``start`` to ``end`` over steps 1..``end_step`` (default: the
  run's last step), then ``end``. Ours: the usual learning-rate shapes, applied to an exponent.
- ``step``: ``at="0.7@25;0.5@50"``: the start value, then 0.7 from step 25 on, 0.5 from step 50 on;
  a step may be a share of the run, ``0.7@50%`` (step ceil(0.5 * steps)).
- ``difficulty`` (Proposition 2, eq 11: p*_pos = 1 - alpha_pos, p*_neg = alpha_neg): each step,
  alpha_pos = 1 - Q_q(p) and alpha_neg = Q_q(p), where Q_q is the ``quantile`` q of the batch's
  mixed-group accuracies (0 < p < 1, one value per group), clipped to [``low``, ``high``]; the
  peak of each channel's gradient pressure then sits at that quantile. No mixed group: hold.
- ``entropy-band`` (Proposition 1, eq 6: dH ~ +eta alpha_pos kappa for the positive channel and
  -eta alpha_neg kappa for the negative one): when the batch's token-mean entropy is below
  ``entropy_low``, move alpha_pos by +``rate`` * sign(kappa-hat) and alpha_neg by -``rate`` *
  sign(kappa-hat) (each raises entropy); above ``entropy_high`` the opposite; inside the band, or
  kappa-hat undefined / 0: hold. Clipped to [``low``, ``high``]. Set on both channels, the gap
  alpha_pos - alpha_neg moves by up to 2 * rate per step.

Feedback kinds (difficulty, entropy-band) need Proposition 2's closed-form peaks, i.e. an estimator
of the alpha family (``Estimator.alpha_family``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from estimators.registry import check_alpha, get_estimator

if TYPE_CHECKING:
    from torch import Tensor

CHANNELS = ("alpha_pos", "alpha_neg")
KINDS = ("fixed", "linear", "cosine", "step", "difficulty", "entropy-band")
FEEDBACK_KINDS = ("difficulty", "entropy-band")
# Which parameters each kind takes (besides ``schedule``); anything else is a mistake, said so.
KIND_PARAMS = {
    "fixed": ("start",),
    "linear": ("start", "end", "end_step"),
    "cosine": ("start", "end", "end_step"),
    "step": ("start", "at"),
    "difficulty": ("start", "quantile", "low", "high"),
    "entropy-band": ("start", "entropy_low", "entropy_high", "rate", "low", "high"),
}
# Defaults [ours, not the paper's]: the quantiles mirror the best fixed cell (0.9, 0.4), whose
# peaks sit at p = 0.1 and p = 0.4 (spec section 4); the clip range keeps both peaks interior.
DEFAULT_QUANTILE = {"alpha_pos": 0.1, "alpha_neg": 0.4}
DEFAULT_LOW, DEFAULT_HIGH = 0.05, 0.95
DEFAULT_RATE = 0.02  # per step, entropy-band [ours]
PARAM_NAMES = ("schedule",) + tuple(sorted({p for ps in KIND_PARAMS.values() for p in ps}))


@dataclass(frozen=True)
class ChannelSchedule:
    """One channel's schedule, checked."""

    channel: str  # "alpha_pos" or "alpha_neg"
    kind: str
    start: float
    end: float = 0.0
    end_step: int = 1
    at: tuple[tuple[int, float], ...] = ()  # (step, value), steps increasing
    quantile: float = 0.5
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH
    entropy_low: float = 0.0
    entropy_high: float = math.inf
    rate: float = DEFAULT_RATE

    @property
    def feedback(self) -> bool:
        return self.kind in FEEDBACK_KINDS

    def label(self) -> str:
        """Short text for legends: "fixed 0.9", "linear 0.9->0.5", "difficulty q0.1"."""
        if self.kind == "fixed":
            return f"fixed {self.start:g}"
        if self.kind in ("linear", "cosine"):
            return f"{self.kind} {self.start:g}->{self.end:g}"
        if self.kind == "step":
            return "step " + ";".join(f"{v:g}@{s}" for s, v in self.at)
        if self.kind == "difficulty":
            return f"difficulty q{self.quantile:g}"
        return f"entropy-band [{self.entropy_low:g}, {self.entropy_high:g}]"


@dataclass(frozen=True)
class Schedules:
    """Both channels' schedules; ``fixed`` when nothing was declared."""

    alpha_pos: ChannelSchedule
    alpha_neg: ChannelSchedule

    @property
    def is_fixed(self) -> bool:
        return self.alpha_pos.kind == "fixed" and self.alpha_neg.kind == "fixed"

    @property
    def needs_logprobs(self) -> bool:
        """entropy-band reads kappa-hat (old log-probs) and the entropy."""
        return "entropy-band" in (self.alpha_pos.kind, self.alpha_neg.kind)

    def initial_state(self) -> dict[str, float]:
        return {"alpha_pos": self.alpha_pos.start, "alpha_neg": self.alpha_neg.start}


def parse(settings: Mapping[str, Any] | tuple, *, estimator: str, alpha_pos: float, alpha_neg: float,
          steps: int) -> Schedules:
    """Check flat settings ``{"alpha_pos.schedule": "linear", "alpha_pos.end": 0.5, ...}`` against
    the estimator and the run's length; one-line ValueError naming the setting."""

    est = get_estimator(estimator)
    given: dict[str, dict[str, Any]] = {c: {} for c in CHANNELS}
    for key, value in dict(settings).items():
        channel, _, name = str(key).partition(".")
        if channel not in CHANNELS or not name:
            raise ValueError(f"schedule setting '{key}' must be alpha_pos.<name> or alpha_neg.<name>")
        if name not in PARAM_NAMES:
            raise ValueError(f"unknown schedule setting '{key}'; known: {', '.join(PARAM_NAMES)}")
        given[channel][name] = value
    out = {}
    for channel, base in (("alpha_pos", alpha_pos), ("alpha_neg", alpha_neg)):
        params = given[channel]
        kind = str(params.pop("schedule", "fixed"))
        if kind not in KINDS:
            raise ValueError(f"{channel}.schedule: unknown kind '{kind}'; known: {', '.join(KINDS)}")
        extra = sorted(set(params) - set(KIND_PARAMS[kind]))
        if extra:
            raise ValueError(f"{channel}.{extra[0]} does not apply to a '{kind}' schedule (it takes: "
                             f"{', '.join(KIND_PARAMS[kind])})")
        if (kind != "fixed" or params) and channel not in est.tunable:
            raise ValueError(f"{channel}.schedule={kind}: estimator '{estimator}' fixes {channel}; use 'asym'")
        if kind in FEEDBACK_KINDS and not est.alpha_family:
            raise ValueError(f"{channel}.schedule={kind} follows Proposition 2's peaks, which need an alpha-family "
                             f"estimator; '{estimator}' is not one")
        out[channel] = _channel(channel, kind, params, base, steps, check_alpha)
    return Schedules(**out)


def canonical(settings: tuple, estimator: str, alpha_pos: float, alpha_neg: float,
              steps: int) -> tuple[tuple, float, float]:
    """(settings, alpha_pos, alpha_neg) after ``parse``'s checks; a schedule that is fixed on both
    channels becomes the plain trial: no settings, the alphas it starts (and stays) at."""
    plan = parse(settings, estimator=estimator, alpha_pos=alpha_pos, alpha_neg=alpha_neg, steps=steps)
    if plan.is_fixed:
        return (), plan.alpha_pos.start, plan.alpha_neg.start
    return tuple(sorted(dict(settings).items())), alpha_pos, alpha_neg


def slug(settings: tuple) -> str:
    """A trial-name part: each scheduled channel's kind and a digest of all settings, "pos-linear-1050"."""

    kinds = dict(settings)
    parts = [f"{c[6:]}-{kinds[c + '.schedule']}" for c in CHANNELS if c + ".schedule" in kinds]
    return "-".join([*parts, hashlib.sha1(repr(tuple(settings)).encode()).hexdigest()[:4]])


def _channel(channel: str, kind: str, p: dict[str, Any], base: float, steps: int, check_alpha) -> ChannelSchedule:
    def number(name: str, default: float | None = None) -> float:
        if name not in p:
            if default is None:
                raise ValueError(f"{channel}.schedule={kind} needs {channel}.{name}")
            return default
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{channel}.{name} must be a finite number, got {value!r}")
        return float(value)

    def unit(name: str, default: float) -> float:
        value = number(name, default)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{channel}.{name} must be in [0, 1] for a '{kind}' schedule, got {value:g}")
        return value

    def run_step(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
            raise ValueError(f"{channel}.{name} must be a step >= 1, got {value!r}")
        if int(value) > steps:
            raise ValueError(f"{channel}.{name}={int(value)} is past the run's last step ({steps})")
        return int(value)

    start = check_alpha(f"{channel}.start", number("start", base))
    fields: dict[str, Any] = {}
    if kind in ("linear", "cosine"):
        fields["end"] = check_alpha(f"{channel}.end", number("end"))
        fields["end_step"] = run_step("end_step", p.get("end_step", steps))
    elif kind == "step":
        fields["at"] = _milestones(channel, p.get("at"), steps, run_step, check_alpha)
    elif kind in FEEDBACK_KINDS:
        fields["low"], fields["high"] = unit("low", DEFAULT_LOW), unit("high", DEFAULT_HIGH)
        if fields["low"] > fields["high"]:
            raise ValueError(f"{channel}.low {fields['low']:g} is above {channel}.high {fields['high']:g}")
        if kind == "difficulty":
            q = number("quantile", DEFAULT_QUANTILE[channel])
            if not 0.0 < q < 1.0:
                raise ValueError(f"{channel}.quantile must be in (0, 1), got {q:g}")
            fields["quantile"] = q
        else:
            lo, hi = number("entropy_low"), number("entropy_high")
            if not 0.0 <= lo < hi:
                raise ValueError(f"{channel}: the entropy band needs 0 <= entropy_low < entropy_high, got [{lo:g}, {hi:g}]")
            rate = number("rate", DEFAULT_RATE)
            if not 0.0 < rate <= 1.0:
                raise ValueError(f"{channel}.rate must be in (0, 1], got {rate:g}")
            fields.update(entropy_low=lo, entropy_high=hi, rate=rate)
        start = min(max(start, fields["low"]), fields["high"])
    return ChannelSchedule(channel, kind, start, **fields)


def _milestones(channel: str, text: Any, steps: int, run_step, check_alpha) -> tuple[tuple[int, float], ...]:
    """"0.7@25;0.5@50" -> ((25, 0.7), (50, 0.5)); steps strictly increasing."""
    example = f"{channel}.at needs value@step items joined by ';', e.g. \"0.7@25;0.5@50\""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{example}; got {text!r}")
    out: list[tuple[int, float]] = []
    for item in text.replace(" ", "").split(";"):
        value, sep, step = item.partition("@")
        share = step.endswith("%")  # "0.7@50%": half-way through the run, whatever its length
        try:
            parsed = (float(step[:-1] if share else step), float(value))
        except ValueError:
            raise ValueError(f"{example}; got {text!r}") from None
        if not sep or (share and not 0 < parsed[0] <= 100):
            raise ValueError(f"{example}; got {text!r}")
        at = run_step("at", max(1, math.ceil(parsed[0] / 100 * steps)) if share else parsed[0])
        if out and at <= out[-1][0]:
            raise ValueError(f"{channel}.at: steps must increase, got {text!r}")
        out.append((at, check_alpha(f"{channel}.at", parsed[1])))
    return tuple(out)


# --- the per-step rule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchStats:
    """What the feedback kinds read from one rollout batch, before its update."""

    mixed_accuracies: tuple[float, ...]  # p_g of each mixed group
    kappa: float  # App E's kappa-hat (NaN: no mixed group)
    entropy: float  # token-mean entropy of the old policy over response tokens (eq 7)


def batch_stats(rewards: Tensor, group_ids: Tensor, seq_logprob: Tensor | None = None,
                token_entropy: Tensor | None = None, response_mask: Tensor | None = None) -> BatchStats:
    """BatchStats of one batch; kappa and entropy are NaN when their inputs are not given."""
    from estimators.advantages import group_table  # deferred: torch
    from estimators.diagnostics import kappa, masked_mean  # deferred: torch

    k, n, _ = group_table(rewards, group_ids)
    mixed = (k > 0) & (k < n)
    accs = tuple(float(x) for x in (k[mixed] / n[mixed]).tolist())
    kap = kappa(rewards, group_ids, seq_logprob) if seq_logprob is not None else math.nan
    ent = (masked_mean(token_entropy, response_mask) if token_entropy is not None and response_mask is not None
           else math.nan)
    return BatchStats(accs, kap, ent)


def advance(schedules: Schedules, state: Mapping[str, float], step: int,
            stats: BatchStats | None) -> dict[str, float]:
    """The alphas of ``step`` (>= 1), the new state: ``{"alpha_pos": a+, "alpha_neg": a-}``."""
    return {c: _value(getattr(schedules, c), float(state[c]), step, stats) for c in CHANNELS}


def _value(s: ChannelSchedule, previous: float, step: int, stats: BatchStats | None) -> float:
    if s.kind == "fixed":
        return s.start
    if s.kind in ("linear", "cosine"):
        frac = min(step, s.end_step) / s.end_step
        if s.kind == "cosine":
            frac = (1.0 - math.cos(math.pi * frac)) / 2.0
        return s.start + (s.end - s.start) * frac
    if s.kind == "step":
        value = s.start
        for at, v in s.at:
            if step >= at:
                value = v
        return value
    if stats is None:
        raise ValueError(f"{s.channel}.schedule={s.kind} needs the batch's statistics")
    if s.kind == "difficulty":
        if not stats.mixed_accuracies:
            return previous
        q = _quantile(sorted(stats.mixed_accuracies), s.quantile)
        target = 1.0 - q if s.channel == "alpha_pos" else q  # eq 11
        return min(max(target, s.low), s.high)
    # entropy-band (eq 6): +alpha_pos and -alpha_neg each raise entropy when kappa > 0
    if math.isnan(stats.kappa) or stats.kappa == 0 or math.isnan(stats.entropy):
        return previous
    if stats.entropy < s.entropy_low:
        raise_entropy = 1.0
    elif stats.entropy > s.entropy_high:
        raise_entropy = -1.0
    else:
        return previous
    sign = math.copysign(1.0, stats.kappa) * (1.0 if s.channel == "alpha_pos" else -1.0)
    return min(max(previous + raise_entropy * sign * s.rate, s.low), s.high)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's and torch's default), in plain floats: both backends
    get bit-identical values."""
    pos = q * (len(sorted_values) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
