"""The comparators' fixed constants (``estimators.comparators``), in a module without torch: the
registry quotes them in each entry's source line, and the CLI reads the registry without torch."""

W_REINFORCE_LAMBDA = 0.1  # Zhu et al. Sec 4: "lambda = 0.1" weights PSR inside W-REINFORCE
UNLIKELINESS_BETA = 0.25  # He et al.'s release: examples/lean/grpo.sh, +lean.rank_penalty=0.25
# Cheng et al.'s shaping constants; alpha = 0.4 and kappa = 2 are the values we read in the paper's
# setup. [ours] where it does not hold for the embedded task: we keep them as they are.
ENTROPY_ADV_ALPHA = 0.4
ENTROPY_ADV_KAPPA = 2.0
