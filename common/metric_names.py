"""Metric names shared by every backend, MLflow and the analysis layer (one place to change them)."""

ENTROPY = "train/entropy"  # token-mean policy entropy over response tokens (eq 7)
REWARD_MEAN = "train/reward_mean"
NONE_SOLVED = "train/none_solved_frac"
ALL_SOLVED = "train/all_solved_frac"
KAPPA = "train/kappa"  # App E online estimator, per step
ADV_MASS_POS = "train/adv_mass_pos"
ADV_MASS_NEG = "train/adv_mass_neg"
LOGP_GAIN_CORRECT = "train/logp_gain_correct"  # Fig 2 d,h
RESPONSE_LENGTH = "train/response_length"
CLIP_FRAC = "train/clip_frac"
# Embedded only (not in TRAIN_METRICS, which every backend reports): the token-mean entropy along the
# correct answers of a fixed held-out probe set, teacher-forced, before the step's update (issue 25).
ENTROPY_PROBE = "train/entropy_probe"
# Embedded only: Proposition 1's prediction of this step's entropy change minus REINFORCE's on the same
# batch, per unit eta (estimators.prop1): the exact within-group one (all orders in alpha, the run's own
# rollout advantages against A = 2r - 1) and eq 6's linearised (alpha+ - alpha-) kappa (alpha family).
PROP1_GAP_EXACT = "train/prop1_gap_exact"
PROP1_GAP_LINEAR = "train/prop1_gap_linear"

TRAIN_METRICS = (
    ENTROPY, REWARD_MEAN, NONE_SOLVED, ALL_SOLVED, KAPPA, ADV_MASS_POS, ADV_MASS_NEG,
    LOGP_GAIN_CORRECT, RESPONSE_LENGTH, CLIP_FRAC,
)

# Per-channel telemetry (issue 13): "pos" / "neg" are the tokens of rollouts whose advantage is > 0 / < 0
# (the rollout's mean token advantage). Computed by estimators.diagnostics.channel_telemetry.
ENTROPY_POS = "train/entropy_pos"  # token-mean old-policy entropy (eq 7), positive-advantage rollouts
ENTROPY_NEG = "train/entropy_neg"  # ... negative-advantage rollouts
COV_LOGP_ADV = "train/cov_logp_adv"  # token mean of C_t = (A_t - mean A)(log pi_t - mean log pi) (Cui et al.)
COV_LOGP_ADV_Q10 = "train/cov_logp_adv_q10"  # quantiles of C_t over the step's response tokens
COV_LOGP_ADV_Q50 = "train/cov_logp_adv_q50"
COV_LOGP_ADV_Q90 = "train/cov_logp_adv_q90"
# After the step's update (embedded backend; verl has no post-update pass): same tokens, new policy.
ENTROPY_CHANGE = "train/entropy_change"  # token-mean entropy after minus before, all response tokens
ENTROPY_CHANGE_POS = "train/entropy_change_pos"
ENTROPY_CHANGE_NEG = "train/entropy_change_neg"
LOGP_CHANGE_POS = "train/logp_change_pos"  # token-mean log pi_new - log pi_old, positive-advantage rollouts
LOGP_CHANGE_NEG = "train/logp_change_neg"
# PPO ratio clipping, split by side (mean over mini-batches): ratio above 1 + eps_high with A > 0,
# below 1 - eps_low with A < 0 (the tokens whose clipped term is active). train/clip_frac is their sum.
CLIP_FRAC_UPPER = "train/clip_frac_upper"
CLIP_FRAC_LOWER = "train/clip_frac_lower"

CHANNEL_METRICS = (
    ENTROPY_POS, ENTROPY_NEG, COV_LOGP_ADV, COV_LOGP_ADV_Q10, COV_LOGP_ADV_Q50, COV_LOGP_ADV_Q90,
    ENTROPY_CHANGE, ENTROPY_CHANGE_POS, ENTROPY_CHANGE_NEG, LOGP_CHANGE_POS, LOGP_CHANGE_NEG,
    CLIP_FRAC_UPPER, CLIP_FRAC_LOWER,
)
# The ones verl's trainer subclass can compute from the batch before the update.
PRE_UPDATE_CHANNEL_METRICS = (ENTROPY_POS, ENTROPY_NEG, COV_LOGP_ADV, COV_LOGP_ADV_Q10, COV_LOGP_ADV_Q50,
                              COV_LOGP_ADV_Q90)

# The alphas a step's advantages used (estimators.schedules; constant under a fixed schedule). Logged
# every step by the engine, and by verl's trainer for our asym_grpo estimator (not for verl's grpo).
ALPHA_POS = "train/alpha_pos"
ALPHA_NEG = "train/alpha_neg"
SCHEDULE_METRICS = (ALPHA_POS, ALPHA_NEG)

EVAL_MEAN_ACCURACY = "eval/mean_accuracy"


def eval_accuracy(benchmark: str) -> str:
    """Avg@k accuracy of one benchmark (a tier of the embedded task, or a verl data source)."""
    return f"eval/{benchmark}/accuracy"


def eval_accuracy_se(benchmark: str) -> str:
    """Standard error of one evaluation's Avg@k over its prompts (the embedded hard split logs it)."""
    return f"eval/{benchmark}/accuracy_se"


def eval_pass_at_k(benchmark: str, k: int) -> str:
    """Unbiased pass@k at T = 1 (estimators.eval_measures); '@' is not allowed in an MLflow metric name."""
    return f"eval/{benchmark}/pass_at_{k}"


def eval_auc(benchmark: str) -> str:
    """Running normalized area under the benchmark's Avg@k curve from step 0 (estimators.eval_measures)."""
    return f"eval/{benchmark}/auc"

# The ledger (cumulative over a trial's attempts, logged every step; the sweep's parent run sums them).
COST_GPU_SECONDS = "cost/gpu_seconds"  # GPUs reserved x wall seconds held
COST_CPU_SECONDS = "cost/cpu_seconds"  # CPU time of the trial process and its children
COST_WALL_SECONDS = "cost/wall_seconds"
COST_METRICS = (COST_GPU_SECONDS, COST_CPU_SECONDS, COST_WALL_SECONDS)
