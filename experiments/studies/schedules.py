"""Adaptive alpha schedules (issue 28; the paper's stated future work, App I and Sec 4).

GRPO and the fixed best cell (0.9, 0.4) against one schedule of each kind (``estimators.schedules``),
all starting from that cell. The paper fixes the alphas for the whole run and leaves schedules to
future work [v2]; every schedule value here is ours [NF]. The entropy band was chosen on a probe
seed (100) of the default embedded testbed, not on the study's seeds.
"""

from experiments.spec import Method, Study

GRPO = Method("GRPO", "grpo")  # eq 3/4, alpha = 0.5 [v2]
BEST = dict(estimator="asym", alpha_pos=0.9, alpha_neg=0.4)  # best cell [v1*, two notes; 59.36 v2]
FIXED = Method("AsymGRPO (0.9, 0.4) fixed", **BEST)
# Open-loop: anneal alpha_pos from the best cell towards GRPO's 0.5 (ours), alpha_neg fixed.
LINEAR = Method("linear a+ 0.9->0.5", **BEST, schedule=(("alpha_pos.end", 0.5), ("alpha_pos.schedule", "linear")))
COSINE = Method("cosine a+ 0.9->0.5", **BEST, schedule=(("alpha_pos.end", 0.5), ("alpha_pos.schedule", "cosine")))
STEP = Method("step a+ 0.9/0.7/0.5", **BEST,
              schedule=(("alpha_pos.at", "0.7@34%;0.5@67%"), ("alpha_pos.schedule", "step")))
# Feedback, Proposition 2 (eq 11): the positive peak at the 0.1 quantile of the mixed groups'
# accuracies and the negative peak at the 0.4 quantile, the best cell's peak positions (p = 0.1, 0.4).
DIFFICULTY = Method("difficulty (q+ 0.1, q- 0.4)", **BEST, schedule=(
    ("alpha_neg.quantile", 0.4), ("alpha_neg.schedule", "difficulty"),
    ("alpha_pos.quantile", 0.1), ("alpha_pos.schedule", "difficulty")))
# Feedback, Proposition 1 (eq 6): hold the token entropy in a band by moving alpha_pos - alpha_neg.
# Ours, from one probe run of the fixed cell (seed 100, default embedded testbed): its entropy fell from
# 0.38 at step 1 through 0.18 (step 20) and 0.15 (step 30) to 0.065 (step 100); the band keeps it
# at 0.15-0.25, so the schedule acts from about step 30 on. Rate: the module's default, 0.02 per step.
ENTROPY_BAND_LOW, ENTROPY_BAND_HIGH = 0.15, 0.25
_BAND = (("entropy_high", ENTROPY_BAND_HIGH), ("entropy_low", ENTROPY_BAND_LOW), ("schedule", "entropy-band"))
ENTROPY_BAND = Method(f"entropy-band [{ENTROPY_BAND_LOW:g}, {ENTROPY_BAND_HIGH:g}]", **BEST,
                      schedule=tuple(sorted((f"{c}.{k}", v) for c in ("alpha_pos", "alpha_neg") for k, v in _BAND)))

STUDY = Study(
    name="schedules",
    title="Adaptive alpha schedules against the fixed best cell",
    description="GRPO, AsymGRPO (0.9, 0.4) fixed, and linear, cosine, step, difficulty-tracking "
    "(Prop. 2) and entropy-band (Prop. 1) schedules starting from (0.9, 0.4).",
    methods=(GRPO, FIXED, LINEAR, COSINE, STEP, DIFFICULTY, ENTROPY_BAND),
    models=("qwen3-4b",),  # the paper's primary backbone [v2, App H]
)

SOURCES = {
    "GRPO": "Table 2 [v2]; eq 3/4, alpha = 0.5",
    "AsymGRPO (0.9, 0.4) fixed": "Table 2 best row [v2]; (0.9, 0.4) [v1*, two notes]",
    "linear a+ 0.9->0.5": "schedules are future work in the paper (App I) [v2]; shape and values ours [NF]",
    "cosine a+ 0.9->0.5": "schedules are future work in the paper (App I) [v2]; shape and values ours [NF]",
    "step a+ 0.9/0.7/0.5": "schedules are future work in the paper (App I) [v2]; steps and values ours [NF]",
    "difficulty (q+ 0.1, q- 0.4)": "Prop. 2 / eq 11 peaks [der]; quantiles ours [NF] (the best cell's peaks)",
    "entropy-band [0.15, 0.25]": "Prop. 1 / eq 6 signs [der]; band and rate ours [NF] (probe seed 100)",
}
