"""The exact verifier of the embedded task (``tinyrlvr.task.verify``) as verl's custom reward.

verl decodes the response with ``skip_special_tokens=True``; the end token ``$`` is an ordinary
token of the ``cpu-tiny`` tokenizer (``assets.make_tokenizer``), so it survives decoding. The
ground truth is the full answer with its end token (``15$`` for 12+39): a response is right when
its text up to and including the first ``$`` equals it, as the engine scores it.
"""

from __future__ import annotations

from typing import Any


def is_correct(solution_str: str, ground_truth: str) -> bool:
    end = solution_str.find("$")
    return end >= 0 and solution_str[: end + 1] == ground_truth


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None,
                  **kwargs: Any) -> dict[str, float]:
    """verl's custom reward signature; ``score`` is 0/1 and ``acc`` feeds ``val-core/<tier>/acc``."""
    correct = 1.0 if is_correct(str(solution_str), str(ground_truth)) else 0.0
    return {"score": correct, "acc": correct}
