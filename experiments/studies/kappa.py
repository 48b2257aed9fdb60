"""Reward-confidence alignment kappa (paper Table 1, App E): its online estimate over the first 20 steps.

kappa is measured on the rollout batch before each update (App E), so it describes the model, not
the estimator; we take it from GRPO runs (the estimator of the paper's baseline; which run the
paper used is [NF]). The reported value is the mean of the per-step estimates over steps 1..20.
"""

from experiments.spec import Method, Study

GRPO = Method("GRPO", "grpo")  # the GRPO family the paper studies; exact run [NF]

STUDY = Study(
    name="kappa",
    title="kappa over the first 20 steps (Table 1)",
    description="GRPO for 20 steps per backbone; the report averages train/kappa over steps 1..20.",
    methods=(GRPO,),
    # "on Qwen2.5-Math-1.5B, Qwen3-4B, and Qwen2.5-7B-Base" [v2, Sec 2.2]
    models=("qwen2.5-math-1.5b", "qwen3-4b", "qwen2.5-7b-base"),
    default_steps=20,  # "We estimate kappa over the first 20 training steps" [v2, Sec 2.2]
)

SOURCES = {
    "GRPO": "Table 1 / App E: kappa-bar = mean of kappa-hat_t over t = 1..20 [v2]; GRPO runs [NF]",
}
