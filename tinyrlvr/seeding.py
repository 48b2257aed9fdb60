"""Named random streams derived from (seed, step): common random numbers and exact resume.

Every random draw of a run comes from a generator made here for one purpose and one step, never
from torch's global RNG. So the same seed gives the same prompt stream in every configuration
(paired comparisons), and a run resumed at step s draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS = {"prompts": 1, "rollouts": 2, "shuffle": 3, "eval": 4, "init": 5, "warmup-data": 6, "warmup-eval": 7,
           "eval-set": 8, "warmup-relearn": 9, "clip-cov": 10, "eval-hard": 11, "eval-pass": 12}


def stream_seed(seed: int, step: int, stream: str) -> int:
    """A 63-bit seed for (seed, step, stream), well mixed by numpy's SeedSequence."""
    state = np.random.SeedSequence([int(seed), int(step), STREAMS[stream]]).generate_state(2, np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def generator(seed: int, step: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(seed, step, stream))
    return g
