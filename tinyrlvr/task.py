"""The verifiable task: tiered addition with the answer written backwards, checked exactly.

A problem of tier t is ``a+b=`` with two operands of exactly t digits (tier 1: 0..9). The answer is
the digits of a+b least significant first, closed by the end token ``$``: ``12+39=`` -> ``15$``
(51 reversed). Reward is 1 only on an exact match with the end token present. Tiers play the paper's
benchmarks, easy to hard; writing the answer backwards lets a small causal model add column by column.

Held-out split: a fixed hash of (a, b) puts 20% of all operand pairs in the evaluation split; the
training prompt stream and the warm-up demonstrations never contain them. Tier 1 has only 100 pairs
(about 20 held out), so its evaluation set repeats pairs (drawn with replacement).

Token ids: digits 0-9 are ids 0-9, then ``+ = $`` (10, 11, 12), then BOS ``^`` (13) and PAD ``_``
(14). The policy's output head covers only ids 0..12 (OUTPUT_VOCAB), so PAD and BOS can never be
sampled: their logit is -inf by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

CHARS = "0123456789+=$^_"
PLUS, EQUALS, EOS, BOS, PAD = 10, 11, 12, 13, 14
VOCAB_SIZE = len(CHARS)
OUTPUT_VOCAB = 13  # ids the policy may emit: digits, '+', '=', '$'
HELDOUT_MOD = 5  # one pair in five is held out for evaluation


def tier_name(tier: int) -> str:
    return f"tier{tier}"


def decode(ids: Tensor | list[int]) -> str:
    return "".join(CHARS[int(i)] for i in ids)


def answer_text(a: int, b: int) -> str:
    """The correct response for ``a+b=``: the digits of the sum reversed, then the end token."""
    return str(a + b)[::-1] + "$"


def verify(a: int, b: int, response: str) -> bool:
    """Exact verifier on text: the response up to and including its first '$' must be the answer."""
    end = response.find("$")
    return end >= 0 and response[: end + 1] == answer_text(a, b)


def is_heldout(a: Tensor, b: Tensor) -> Tensor:
    """Deterministic 20% split of operand pairs (integer mixing, no overflow in int64)."""
    x = (a.long() * 1_000_003 + b.long()) % (1 << 32)
    x = (x * 2654435761) % (1 << 32)
    x = x ^ (x >> 13)
    x = (x * 0x5BD1E995) % (1 << 32)
    x = x ^ (x >> 15)
    return x % HELDOUT_MOD == 0


def operand_range(tier: int) -> tuple[int, int]:
    """Inclusive range of t-digit numbers (tier 1 includes 0)."""
    return (0 if tier == 1 else 10 ** (tier - 1)), 10**tier - 1


@dataclass(frozen=True)
class Problems:
    """A batch of problems: operands and tier per row, all (n,) int64."""

    a: Tensor
    b: Tensor
    tier: Tensor

    def __len__(self) -> int:
        return self.a.numel()


def sample_problems(tiers: Tensor, generator: torch.Generator, heldout: bool) -> Problems:
    """One problem per entry of ``tiers`` (n,), from the training split or the held-out split."""
    n = tiers.numel()
    a = torch.empty(n, dtype=torch.long)
    b = torch.empty(n, dtype=torch.long)
    for tier in torch.unique(tiers).tolist():
        rows = (tiers == tier).nonzero().squeeze(1)
        lo, hi = operand_range(tier)
        need, got_a, got_b = rows.numel(), [], []
        while need > 0:
            draw = max(4 * need * (HELDOUT_MOD if heldout else 1), 16)
            ca = torch.randint(lo, hi + 1, (draw,), generator=generator)
            cb = torch.randint(lo, hi + 1, (draw,), generator=generator)
            keep = is_heldout(ca, cb) == heldout
            got_a.append(ca[keep][:need])
            got_b.append(cb[keep][:need])
            need -= int(got_a[-1].numel())
        a[rows] = torch.cat(got_a)
        b[rows] = torch.cat(got_b)
    return Problems(a, b, tiers.long().clone())


def encode_prompts(problems: Problems, prompt_len: int) -> tuple[Tensor, Tensor]:
    """Left-padded prompt ids ``^a+b=`` and their non-pad mask: (n, prompt_len) each."""
    n = len(problems)
    ids = torch.full((n, prompt_len), PAD, dtype=torch.long)
    t = problems.tier
    length = 2 * t + 3
    start = prompt_len - length  # (n,)
    col = torch.arange(prompt_len).unsqueeze(0)  # (1, P)
    rel = col - start.unsqueeze(1)  # position inside the prompt, (n, P)
    tt = t.unsqueeze(1)
    digit_a = _digit_at(problems.a, tt - rel)  # most significant first
    digit_b = _digit_at(problems.b, 2 * tt + 1 - rel)
    ids = torch.where(rel == 0, BOS, ids)
    ids = torch.where((rel >= 1) & (rel <= tt), digit_a, ids)
    ids = torch.where(rel == tt + 1, PLUS, ids)
    ids = torch.where((rel >= tt + 2) & (rel <= 2 * tt + 1), digit_b, ids)
    ids = torch.where(rel == 2 * tt + 2, EQUALS, ids)
    return ids, rel >= 0


def _digit_at(x: Tensor, place: Tensor) -> Tensor:
    """Digit of x (n,) at decimal place ``place`` (n, P) (0 = units); garbage where place is out of range."""
    place = place.clamp(0, 18)
    return (x.unsqueeze(1) // torch.pow(10, place)) % 10


def target_responses(problems: Problems, length: int) -> Tensor:
    """The correct response ids, reversed sum digits + EOS, PAD after: (n, length)."""
    s = problems.a + problems.b
    n_digits = 1 + sum((s >= 10**k).long() for k in range(1, 13))
    j = torch.arange(length).unsqueeze(0)  # (1, R)
    digits = (s.unsqueeze(1) // torch.pow(10, j.clamp(max=18))) % 10
    nd = n_digits.unsqueeze(1)
    out = torch.where(j < nd, digits, PAD)
    return torch.where(j == nd, EOS, out)


def score(responses: Tensor, targets: Tensor) -> Tensor:
    """Binary reward (n,) float, ``verify`` vectorized: the response matches the target up to and
    including its end token; whatever follows the end token is ignored."""
    return ((responses.to(targets.device) == targets) | (targets == PAD)).all(-1).float()
