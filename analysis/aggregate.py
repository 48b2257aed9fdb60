"""Pure aggregation functions over small numpy arrays (rliable style: a point and an interval).

Shapes: a history is ``(T,)`` values at ascending steps; a seed matrix is ``(S, T)`` (S seeds, NaN
where a seed has no value at that step). Nothing here reads MLflow or draws.

Choices the paper leaves open (spec section 6/9, [NF]) are settings with our defaults:
- the EMA factor on test-accuracy curves (``DEFAULT_EMA`` = 0.8);
- seeds and intervals are not disclosed: we report the mean over seeds with a percentile bootstrap
  interval of that mean (95 %, 2000 resamples, seeded);
- checkpoint selection: the paper takes the best MATH-500 checkpoint (spec section 6, [v1*]), i.e.
  the step where the selection score peaks; ``last`` takes the final evaluation instead. Ours: step 0
  (the base model, which has its own row) is never a trained run's checkpoint, and on ties the later
  step wins (as much accuracy after more training);
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

DEFAULT_EMA = 0.8  # [NF] in the paper; spec section 9 suggests 0.6-0.9
DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOTSTRAPS = 2000
KAPPA_STEPS = 20  # Table 1: kappa-bar = mean of kappa-hat_t over the first 20 training steps (App E)
SELECT_MODES = ("best", "last")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval; arrays when computed per step."""

    point: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float
    n: np.ndarray | int  # samples (seeds) behind each estimate


def ema(values: np.ndarray, factor: float = DEFAULT_EMA) -> np.ndarray:
    """Exponential moving average: s_0 = x_0, s_t = factor * s_{t-1} + (1 - factor) * x_t.

    ``factor`` 0 returns the values unchanged; NaN entries are skipped (the average carries over
    and the output keeps NaN there). ``(T,)`` -> ``(T,)``.
    """
    if not 0.0 <= factor < 1.0:
        raise ValueError(f"EMA factor must be in [0, 1), got {factor}")
    x = np.asarray(values, dtype=np.float64)
    out = np.full_like(x, np.nan)
    state = np.nan
    for t, value in enumerate(x):
        if np.isnan(value):
            continue
        state = value if np.isnan(state) else factor * state + (1.0 - factor) * value
        out[t] = state
    return out


def bootstrap_mean(samples: np.ndarray, confidence: float = DEFAULT_CONFIDENCE,
                   n_boot: int = DEFAULT_BOOTSTRAPS, seed: int = 0) -> Interval:
    """Mean over seeds (axis 0) with a percentile-bootstrap interval of the mean.

    ``samples`` is ``(S,)`` or ``(S, T)``; NaN entries are ignored per column. With one seed the
    interval collapses to the point. The RNG is seeded, so the interval is reproducible.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(samples, dtype=np.float64)
    scalar = x.ndim == 1
    if scalar:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"samples must be (seeds,) or (seeds, steps) with at least one seed, got shape {x.shape}")
    valid = ~np.isnan(x)
    n = valid.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, on purpose
        point = np.nanmean(x, axis=0)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, x.shape[0], size=(n_boot, x.shape[0]))  # (B, S) resampled seed indices
        means = np.nanmean(x[idx], axis=1)  # (B, T)
        tail = (1.0 - confidence) / 2.0
        low = np.nanquantile(means, tail, axis=0)
        high = np.nanquantile(means, 1.0 - tail, axis=0)
    single = n <= 1
    low = np.where(single, point, low)
    high = np.where(single, point, high)
    if scalar:
        return Interval(float(point[0]), float(low[0]), float(high[0]), int(n[0]))
    return Interval(point, low, high, n)


def select_checkpoint(steps: np.ndarray, scores: np.ndarray, mode: str = "best") -> int:
    """The evaluation step a table reports for a trained run: where ``scores`` peak or the last.

    ``steps`` and ``scores`` are ``(T,)``. Step 0 (the base model, before any update) and NaN scores
    are never selected; among tied peaks the latest step wins.
    """
    if mode not in SELECT_MODES:
        raise ValueError(f"checkpoint selection must be one of {', '.join(SELECT_MODES)}, got '{mode}'")
    s = np.asarray(steps)
    v = np.asarray(scores, dtype=np.float64)
    if s.shape != v.shape or s.ndim != 1:
        raise ValueError(f"steps {s.shape} and scores {v.shape} must be matching 1-D arrays")
    ok = ~np.isnan(v) & (s > 0)
    if not ok.any():
        raise ValueError("no evaluated checkpoint after step 0 to select (the run was not evaluated after training)")
    order = np.argsort(s[ok], kind="stable")
    s, v = s[ok][order], v[ok][order]
    if mode == "last":
        return int(s[-1])
    return int(s[len(v) - 1 - int(np.argmax(v[::-1]))])  # the last of the tied peaks


def first_steps_mean(steps: np.ndarray, values: np.ndarray, n: int = KAPPA_STEPS) -> float:
    """Mean of the values at the first ``n`` logged steps, NaN (undefined kappa-hat) skipped.

    Table 1's kappa-bar (App E): (1/20) sum_{t=1..20} kappa-hat_t. A step whose kappa-hat is NaN
    (no mixed group) is left out of the mean; NaN if none of the first ``n`` steps has a value.
    """
    if n < 1:
        raise ValueError(f"number of steps must be >= 1, got {n}")
    s = np.asarray(steps)
    v = np.asarray(values, dtype=np.float64)
    first = v[np.argsort(s, kind="stable")][:n]
    first = first[~np.isnan(first)]
    return float(first.mean()) if first.size else float("nan")
