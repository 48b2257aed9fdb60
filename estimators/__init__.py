"""The paper's advantage estimators and diagnostics: pure torch, no Ray, no MLflow, no verl.

``estimators.verl_adapter`` is the only module that imports verl.
"""

from estimators.advantages import broadcast_to_tokens
from estimators.registry import (
    ESTIMATORS,
    Estimator,
    check_alpha,
    compute_advantages,
    compute_token_advantages,
    get_estimator,
)

__all__ = ["ESTIMATORS", "Estimator", "broadcast_to_tokens", "check_alpha", "compute_advantages",
           "compute_token_advantages", "get_estimator"]
