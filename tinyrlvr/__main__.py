"""Dev entry: one embedded RLVR run printed step by step (the `asym train` command is the real CLI).

    python -m tinyrlvr --estimator asym --alpha-pos 0.9 --alpha-neg 0.4 --steps 20 --seed 0 [--smoke]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys

from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyrlvr", description="one embedded RLVR run")
    ap.add_argument("--estimator", default="grpo")
    ap.add_argument("--alpha-pos", type=float)
    ap.add_argument("--alpha-neg", type=float)
    ap.add_argument("--entropy-coeff", type=float, default=0.0)
    ap.add_argument("--clip-high", type=float, default=0.2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--smoke", action="store_true", help="tiny model and batch: seconds, for a first look")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = EngineConfig.create(estimator=args.estimator, alpha_pos=args.alpha_pos, alpha_neg=args.alpha_neg,
                                  entropy_coeff=args.entropy_coeff, clip_high=args.clip_high, steps=args.steps,
                                  seed=args.seed, device=args.device, threads=args.threads,
                                  **(SMOKE_OVERRIDES if args.smoke else {}))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from tinyrlvr.trainer import train  # deferred: numpy, torch

    def show(step: int, metrics: dict[str, float]) -> None:
        print(json.dumps({"step": step, **{k: (None if math.isnan(v) else round(v, 5)) for k, v in metrics.items()}}))

    train(cfg, show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
