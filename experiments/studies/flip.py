"""Advantage-flip test (paper Sec 3.2, App C): mirror one channel's dependence on group accuracy.

GRPO (alpha+ = alpha- = 0.5) against EntDecrease (positive channel mirrored, p -> 1-p) and
EntIncrease (negative channel mirrored). Both flips keep the other channel as GRPO and fill the
undefined endpoint by linear extrapolation (spec section 2). Sources: ``shared/paper/spec.md``.
"""

from experiments.spec import Method, Study

GRPO = Method(
    label="GRPO",
    estimator="grpo",  # eq 3/4, closed form with the population std; alpha = 0.5 [v2, v1*]
)
ENT_DECREASE = Method(
    label="EntDecrease",
    estimator="ent-decrease",  # A+ = sqrt(p/(1-p)), A+(1) extrapolated [der, spec section 2]
)
ENT_INCREASE = Method(
    label="EntIncrease",
    estimator="ent-increase",  # A- = -sqrt((1-p)/p), A-(0) extrapolated [der, spec section 2]
)

STUDY = Study(
    name="flip",
    title="Advantage-flip test (Sec 3.2, App C)",
    description="GRPO vs EntDecrease and EntIncrease, flipping one channel's group-accuracy "
    "dependence at alpha = 0.5: entropy moves the predicted way and accuracy drops.",
    methods=(GRPO, ENT_DECREASE, ENT_INCREASE),
    models=("qwen2.5-math-1.5b", "qwen3-4b"),  # Sec 3 runs both models [v2]
)

SOURCES = {
    "GRPO": "eq 3/4, alpha+ = alpha- = 0.5 [v2, v1*]",
    "EntDecrease": "Sec 3.2 / App C: positive channel mirrored at alpha = 0.5 [v2 prose, der formula]",
    "EntIncrease": "Sec 3.2 / App C: negative channel mirrored at alpha = 0.5 [v2 prose, der formula]",
}
