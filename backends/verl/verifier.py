"""One verifier for every method and benchmark: math-verify, called by verl as a custom reward.

verl's built-in scoring dispatches on ``data_source`` (MATH-500 -> ``math_reward``, AIME -> DAPO's
+-1 ...), so different benchmarks would be judged by different rules. Here every row is scored by
``compute_score`` (``reward.custom_reward_function.{path,name}`` in verl 0.9.1): the ground truth is
parsed as LaTeX, the model's answer from its last ``\\boxed{}`` (or a plain final expression), and the
two are compared by math-verify's symbolic equivalence (fractions, decimals, equivalent forms).

Departure: math-verify guards parsing and comparison with ``signal.alarm``, which works only in a
process's main thread; verl calls reward functions from a thread pool, so there the timeouts are
off and the answer text is cut to its last ``MAX_ANSWER_CHARS`` characters to bound the work.
"""

from __future__ import annotations

import threading
from typing import Any

MAX_ANSWER_CHARS = 4000  # the boxed answer sits at the end of a solution


def _timeouts() -> dict[str, Any]:
    in_main = threading.current_thread() is threading.main_thread()
    return {"parse": 5 if in_main else None, "verify": 5 if in_main else None}


def is_correct(solution_str: str, ground_truth: str) -> bool:
    """True when the solution's final answer equals ``ground_truth`` under math-verify."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify  # deferred: math_verify

    limits = _timeouts()
    truth = str(ground_truth).strip()
    if not truth:
        return False
    gold = parse(f"\\boxed{{{truth}}}", [LatexExtractionConfig()], parsing_timeout=limits["parse"])
    if not gold:  # a plain-text truth such as "3/4" or "0.5"
        gold = parse(truth, [ExprExtractionConfig(), LatexExtractionConfig()], parsing_timeout=limits["parse"])
    answer = parse(str(solution_str)[-MAX_ANSWER_CHARS:], [LatexExtractionConfig(), ExprExtractionConfig()],
                   parsing_timeout=limits["parse"])
    if not gold or not answer:
        return False
    return bool(verify(gold, answer, timeout_seconds=limits["verify"]))


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None,
                  **kwargs: Any) -> dict[str, float]:
    """verl's custom reward signature; ``score`` is 0/1 and ``acc`` feeds ``val-core/<source>/acc``."""
    try:
        correct = is_correct(solution_str, ground_truth)
    except Exception:  # a malformed answer scores 0, it never stops training
        correct = False
    return {"score": 1.0 if correct else 0.0, "acc": 1.0 if correct else 0.0}
