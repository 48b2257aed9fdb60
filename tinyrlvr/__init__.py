"""tinyrlvr: the embedded RLVR engine (tiny causal transformer, verifiable arithmetic task, PPO-clip)."""
