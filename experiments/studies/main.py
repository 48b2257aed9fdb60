"""The main comparison on Qwen3-4B (paper Table 2, Sec 4): AsymGRPO against RLVR baselines.

Baselines are run as the paper names them; values the paper does not give are our defaults and
say so ([NF]). Sources: ``shared/paper/spec.md`` sections 5-7.
"""

from experiments.spec import Method, Study

REINFORCE = Method("REINFORCE", "reinforce", alpha_pos=0.0, alpha_neg=0.0)  # reference row [v2 Table 2]
GRPO = Method("GRPO", "grpo")  # eq 3/4, alpha = 0.5 [v2]
GRPO_ENTROPY = Method(
    "GRPO + entropy bonus", "grpo",
    use_preset_entropy_coeff=True,  # "GRPO w/ Entro.Reg" [v2 Table 2]; coefficient [NF]: preset entropy_coeff
)
CLIP_HIGHER = Method(
    "Clip-higher", "grpo",
    clip_high=0.28,  # eps_high [NF]: DAPO's 0.28 with eps_low = 0.2 (spec section 6, "natural guess")
)
DR_GRPO = Method(
    "Dr.GRPO", "dr-grpo",  # advantage r - mean(r), no std normalisation [v2 Table 2, Liu et al.]
    loss_agg="seq-mean-token-sum-norm",  # Dr.GRPO's length-unbiased aggregation (verl-notes)
)
POS_ONLY = Method("Pos-Only", "pos-only", alpha_pos=0.5, alpha_neg=0.0)  # v2 row; values (0.5, 0) [v1*]
NEG_ONLY = Method("Neg-Only", "neg-only", alpha_pos=0.0, alpha_neg=0.5)  # v2 row; values (0, 0.5) [v1*]
ASYM_SYMMETRIC = Method(
    "AsymGRPO symmetric", "asym",
    alpha_pos=0.9, alpha_neg=0.9,  # tied alpha: value [NF] (scores 57.14 [v2]); 0.9 is our choice (spec section 9)
)
ASYM = Method("AsymGRPO (0.9, 0.4)", "asym", alpha_pos=0.9, alpha_neg=0.4)  # best cell [v1*, two notes; 59.36 v2]

STUDY = Study(
    name="main",
    title="Main comparison on Qwen3-4B (Table 2)",
    description="GRPO, entropy bonus, Clip-higher, Dr.GRPO, Pos-Only, Neg-Only, symmetric and "
    "asymmetric AsymGRPO, with REINFORCE as the reference row.",
    methods=(REINFORCE, GRPO, GRPO_ENTROPY, CLIP_HIGHER, DR_GRPO, POS_ONLY, NEG_ONLY, ASYM_SYMMETRIC, ASYM),
    models=("qwen3-4b",),  # "We use Qwen3-4B as the primary backbone" [v2, App H]
)

SOURCES = {
    "REINFORCE": "Table 2 reference row [v2]; eq 2",
    "GRPO": "Table 2 [v2]; eq 3/4, alpha = 0.5",
    "GRPO + entropy bonus": "Table 2 'GRPO w/ Entro.Reg' [v2]; coefficient [NF] = preset entropy_coeff",
    "Clip-higher": "Table 2 [v2]; eps_high = 0.28 [NF, DAPO default], eps_low = preset clip",
    "Dr.GRPO": "Table 2 [v2]; no std norm + loss_agg seq-mean-token-sum-norm (verl's Dr.GRPO recipe)",
    "Pos-Only": "Table 2 row [v2]; (0.5, 0) [v1*]",
    "Neg-Only": "Table 2 row [v2]; (0, 0.5) [v1*]",
    "AsymGRPO symmetric": "Table 2 ablation alpha+ = alpha- [v2]; value 0.9 [NF, ours]",
    "AsymGRPO (0.9, 0.4)": "Table 2 best row [v2]; (0.9, 0.4) [v1*, two notes]",
}
