"""The entropy-control field on one bench (issue 13): other papers' methods beside GRPO, REINFORCE
and AsymGRPO (0.9, 0.4), one model, the same seeds, the same metrics (per-channel telemetry too).

Each comparator runs at its source's values (``estimators/comparators.py``,
``tinyrlvr/policy_losses.py``); the covariance losses run on GRPO advantages, as Cui et al. do.
The study is ours [NF]; a value from another paper is tagged [ext] with that paper named.
"""

from experiments.spec import Method, Study

METHODS = (
    Method("GRPO", "grpo"),  # eq 4 [v2]
    Method("REINFORCE", "reinforce", alpha_pos=0.0, alpha_neg=0.0),  # eq 2, the Prop. 1 reference
    Method("AsymGRPO (0.9, 0.4)", "asym", alpha_pos=0.9, alpha_neg=0.4),  # Table 2 best row [v2, v1*]
    Method("PSR", "psr"),  # Zhu et al. 2506.01347
    Method("NSR", "nsr"),  # Zhu et al. 2506.01347
    Method("W-REINFORCE", "w-reinforce"),  # Zhu et al. 2506.01347, lambda = 0.1
    Method("Unlikeliness", "unlikeliness"),  # He et al. 2506.02355, beta = 0.25
    Method("Entropy-adv", "entropy-adv"),  # Cheng et al. 2506.14758, alpha = 0.4, kappa = 2
    # Cui et al. 2505.22617, verl loss_mode=clip_cov, with PPO's clip at 1 as their 7B recipe runs it
    Method("Clip-Cov", "grpo", policy_loss="clip_cov", settings=(("clip", 1.0),)),
    Method("KL-Cov", "grpo", policy_loss="kl_cov"),  # Cui et al. 2505.22617, verl loss_mode=kl_cov
)

STUDY = Study(
    name="comparators",
    title="Entropy-control comparators on one bench",
    description="GRPO, REINFORCE and AsymGRPO (0.9, 0.4) against PSR, NSR, W-REINFORCE, the "
    "unlikeliness reward, entropy-based advantage shaping, Clip-Cov and KL-Cov, with per-channel telemetry.",
    methods=METHODS,
    models=("qwen3-4b",),  # on verl: the paper's primary backbone [v2]; embedded: embedded-tiny
)

SOURCES = {
    "GRPO": "AsymGRPO paper eq 4 [v2]",
    "REINFORCE": "AsymGRPO paper eq 2 [der, App B]",
    "AsymGRPO (0.9, 0.4)": "AsymGRPO paper Table 2 best row [v2]; (0.9, 0.4) [v1*]",
    "PSR": "[ext] Zhu et al. arXiv 2506.01347: A = r, positive samples only",
    "NSR": "[ext] Zhu et al. arXiv 2506.01347: A = r - 1, negative samples only",
    "W-REINFORCE": "[ext] Zhu et al. arXiv 2506.01347: A = 0.1 correct / -1 wrong, no group norm",
    "Unlikeliness": "[ext] He et al. arXiv 2506.02355; AndreHe02/rewarding-unlikely-release "
    "verl/trainer/ppo/ray_lean_trainer.py: r(1 - 0.25 rank/G), rank among all G by old log-prob, least likely "
    "first; GRPO (unbiased std); all-correct / all-wrong groups dropped (examples/lean/grpo.sh)",
    "Entropy-adv": "[ext] Cheng et al. arXiv 2506.14758: A_t + min(0.4 H_t, |A_t|/2) on GRPO, H_t from the "
    "updated policy's forward (detached)",
    "Clip-Cov": "[ext] Cui et al. arXiv 2505.22617; PRIME-RL/Entropy-Mechanism-of-RL recipe/dapo/7b_clip_cov.sh: "
    "ratio 2e-4, C_t in (1, 5), PPO clip 1, on GRPO; selects ~1 token per mini-batch here (not ranked)",
    "KL-Cov": "[ext] Cui et al. arXiv 2505.22617; PRIME-RL/Entropy-Mechanism-of-RL recipe/dapo/7b_kl_cov.sh: "
    "k 2e-3 (k_percent 0.2), coef 1, on GRPO; selects ~4 tokens per mini-batch here (not ranked)",
}
