"""Batched group sampling with a KV cache: each prompt is prefilled once, its cache copied to G rows.

Returns the sampled responses with the per-token log-probs and entropies of the sampling
distribution (logits / temperature, before top-p truncation, as verl computes old log-probs), so the
trainer needs no extra forward pass for PPO's old log-probs or for the entropy metric.
After a row emits the end token it emits PAD (log-prob 0, entropy 0, mask 0); sampling stops when
every row is done. ``use_cache=False`` recomputes the full sequence each step: the reference the
tests compare the cached path against (same generator draws, same tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from estimators.diagnostics import entropy_from_logprobs
from tinyrlvr.model import KVCache, Policy
from tinyrlvr.task import EOS, PAD


@dataclass
class Samples:
    responses: Tensor  # (N, R) long, PAD after the end token; N = B * G, rows of one prompt adjacent
    response_mask: Tensor  # (N, R) bool: response tokens up to and including EOS
    logprobs: Tensor  # (N, R) float32, log pi_old of each sampled token (0 where masked)
    entropies: Tensor  # (N, R) float32, eq 7 entropy of the sampling distribution (0 where masked)


def _pick(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Sample one token per row; return (token, its log-prob, entropy) under logits / temperature."""
    logits = logits.float()
    scaled = logits / temperature if temperature > 0 else logits
    logp = torch.log_softmax(scaled, dim=-1)
    probs = logp.exp()
    entropy = entropy_from_logprobs(logp)
    if temperature == 0:
        token = logits.argmax(-1)
    else:
        if top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest prefix with mass >= top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return token, logp.gather(-1, token.unsqueeze(-1)).squeeze(-1), entropy


@torch.no_grad()
def generate(policy: Policy, prompts: Tensor, prompt_valid: Tensor, group_size: int, max_new_tokens: int,
             temperature: float, top_p: float, generator: torch.Generator, use_cache: bool = True) -> Samples:
    """Sample ``group_size`` responses for each of the B left-padded prompts (B, P)."""
    b, p = prompts.shape
    n = b * group_size
    device = prompts.device
    responses = torch.full((n, max_new_tokens), PAD, dtype=torch.long, device=device)
    logprobs = torch.zeros(n, max_new_tokens, device=device)
    entropies = torch.zeros(n, max_new_tokens, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    alive = torch.zeros(n, max_new_tokens, dtype=torch.bool, device=device)
    next_position = prompt_valid.sum(-1).repeat_interleave(group_size)  # (N,) position of response token 0

    if use_cache:
        prefix = KVCache(policy.shape, b, p, device)
        logits = policy.prefill(prompts, prompt_valid, prefix).repeat_interleave(group_size, dim=0)  # (N, V)
        cache = KVCache(policy.shape, n, p + max_new_tokens, device)
        cache.expand_from(prefix, group_size)
    else:
        full_prompts = prompts.repeat_interleave(group_size, dim=0)
        full_valid = prompt_valid.repeat_interleave(group_size, dim=0)
        logits = policy(full_prompts, full_valid, logits_from=p - 1)[:, -1]

    for t in range(max_new_tokens):
        token, lp, ent = _pick(logits, temperature, top_p, generator)
        live = ~done
        responses[:, t] = torch.where(live, token, PAD)
        logprobs[:, t] = torch.where(live, lp, 0.0)
        entropies[:, t] = torch.where(live, ent, 0.0)
        alive[:, t] = live
        done = done | (token == EOS)
        if t == max_new_tokens - 1 or bool(done.all()):
            break
        if use_cache:
            logits = policy.decode(responses[:, t], next_position + t, cache, p + t)
        else:
            tokens = torch.cat([full_prompts, responses[:, :t + 1]], dim=1)
            valid = torch.cat([full_valid, torch.ones(n, t + 1, dtype=torch.bool, device=device)], dim=1)
            logits = policy(tokens, valid, logits_from=p + t)[:, -1]
    return Samples(responses, alive, logprobs, entropies)


def expand_prompts(prompts: Tensor, prompt_valid: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    """Each prompt row repeated G times, matching the row order of ``generate``'s output."""
    return prompts.repeat_interleave(group_size, dim=0), prompt_valid.repeat_interleave(group_size, dim=0)


