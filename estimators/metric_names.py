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

TRAIN_METRICS = (
    ENTROPY, REWARD_MEAN, NONE_SOLVED, ALL_SOLVED, KAPPA, ADV_MASS_POS, ADV_MASS_NEG,
    LOGP_GAIN_CORRECT, RESPONSE_LENGTH, CLIP_FRAC,
)

EVAL_MEAN_ACCURACY = "eval/mean_accuracy"


def eval_accuracy(benchmark: str) -> str:
    """Avg@k accuracy of one benchmark (a tier of the embedded task, or a verl data source)."""
    return f"eval/{benchmark}/accuracy"

# The ledger (cumulative over a trial's attempts, logged every step; the sweep's parent run sums them).
COST_GPU_SECONDS = "cost/gpu_seconds"  # GPUs reserved x wall seconds held
COST_CPU_SECONDS = "cost/cpu_seconds"  # CPU time of the trial process and its children
COST_WALL_SECONDS = "cost/wall_seconds"
COST_METRICS = (COST_GPU_SECONDS, COST_CPU_SECONDS, COST_WALL_SECONDS)
