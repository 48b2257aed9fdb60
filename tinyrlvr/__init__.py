"""tinyrlvr: the embedded RLVR engine (tiny causal transformer, verifiable arithmetic task, PPO-clip).

The paper's experiments at laptop scale on the CPU: tiered reversed-answer addition plays the
benchmarks, a cached base model warmed up on imperfect demonstrations plays the LLM, and every
estimator of ``estimators/`` trains through one code path.

    from tinyrlvr.config import EngineConfig
    from tinyrlvr.trainer import train
    train(EngineConfig.create(estimator="asym", alpha_pos=0.9, alpha_neg=0.4, steps=50), on_step=print)

Modules: config (settings, no torch), task (problems, verifier, split), model (transformer, KV
cache), sampler (group sampling), base_model (warm-up + cache), rollout, loss (eq 12), update (PPO
epochs / mini-batches), evaluate (Avg@k, the entropy probe set), seeding (per-step random streams),
trainer (the loop), probe (Proposition 1's fork-one-update probe).
This file imports nothing, so ``import tinyrlvr.config`` stays torch-free.
"""

# The engine's version in a trial's identity (design, "Trial identity"): bump it with any change that
# alters what a trial computes (sampling, loss, update, evaluation), so finished trials of the older
# engine are not reused by sweeps of the newer one.
# 2: shared-prompt log-prob passes, explicit no-grad attention (round-off differs); 3: entropy shaping
# from the updated policy's forward per mini-batch, the unlikeliness reward as released, the
# train/entropy_probe and Prop. 1 prediction metrics (issue 25)
ENGINE_VERSION = "tinyrlvr-3"
