"""Robustness across backbones (paper Table 3): GRPO and AsymGRPO on Qwen2.5-7B-Base and Qwen2.5-Math-1.5B.

The alphas used for these rows are [NF]; we use the best Qwen3-4B cell (0.9, 0.4), as the spec
presumes (section 7).
"""

from experiments.spec import Method, Study

GRPO = Method("GRPO", "grpo")  # Table 3 "+ GRPO" [v2]
ASYM = Method("AsymGRPO (0.9, 0.4)", "asym", alpha_pos=0.9, alpha_neg=0.4)  # "+ AsymGRPO" [v2]; alphas [NF]

STUDY = Study(
    name="backbones",
    title="Backbone robustness (Table 3)",
    description="GRPO and AsymGRPO (0.9, 0.4) on Qwen2.5-7B-Base and Qwen2.5-Math-1.5B.",
    methods=(GRPO, ASYM),
    models=("qwen2.5-7b-base", "qwen2.5-math-1.5b"),  # Table 3 backbones [v2, App H]
)

SOURCES = {
    "GRPO": "Table 3 '+ GRPO' [v2]",
    "AsymGRPO (0.9, 0.4)": "Table 3 '+ AsymGRPO' [v2]; alphas [NF], presumed the Table 2 best (0.9, 0.4)",
}
