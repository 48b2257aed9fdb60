"""The policy: a small decoder-only transformer in plain torch (pre-LayerNorm, learned positions).

Left padding is handled in one place, ``attention_mask``: positions come from the cumulative
non-pad mask (so a left-padded prompt gets the same positions as an unpadded one), keys that are
padding are masked, and every query may attend to itself (no all-masked softmax row, hence no NaN at
pad positions). The output head covers only the tokens the policy may emit (``task.OUTPUT_VOCAB``):
PAD and BOS have no logit, i.e. -inf.

``forward`` runs a whole sequence (warm-up, the no-cache reference). ``forward_shared_prefix`` runs
each distinct prompt once and only the continuations per row (the RL update and log-prob passes:
a group's G rollouts share their prompt). ``prefill`` and ``decode`` run the same layers against a
preallocated KV cache (``KVCache``) for sampling. ``attention`` picks the faster of two equal forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from estimators.diagnostics import entropy_from_logprobs
from tinyrlvr.task import OUTPUT_VOCAB, VOCAB_SIZE


@dataclass(frozen=True)
class ModelShape:
    n_layers: int
    d_model: int
    n_heads: int
    mlp_ratio: int
    max_len: int  # longest prompt + response

    @classmethod
    def from_config(cls, cfg) -> ModelShape:
        return cls(cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.mlp_ratio, cfg.max_prompt_len + cfg.max_new_tokens)


class KVCache:
    """Preallocated keys/values per layer: (rows, heads, max_len, head_dim), plus the key mask."""

    def __init__(self, shape: ModelShape, rows: int, length: int, device, dtype=torch.float32):
        head_dim = shape.d_model // shape.n_heads
        # Slots are written before they are read (attention reads only [:start + t]): no zero fill.
        self.k = torch.empty(shape.n_layers, rows, shape.n_heads, length, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.key_valid = torch.zeros(rows, length, dtype=torch.bool, device=device)

    def expand_from(self, prefix: KVCache, group_size: int) -> None:
        """Copy a prefilled cache of B rows into this one's first slots, each row repeated G times."""
        p = prefix.k.shape[3]
        self.k[:, :, :, :p] = prefix.k.repeat_interleave(group_size, dim=1)
        self.v[:, :, :, :p] = prefix.v.repeat_interleave(group_size, dim=1)
        self.key_valid[:, :p] = prefix.key_valid.repeat_interleave(group_size, dim=0)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(Dh)) v over keys where ``mask`` (broadcast to (B, H, Tq, Tk)) is True.

    Without autograd, the explicit form: on CPU at this size (Dh 32, <= 20 keys) it is 3-6x faster
    than the fused kernel. With autograd, the fused kernel, whose backward is 2x faster than the
    explicit form's. Both are the same function to float32 round-off (~1e-6 here).
    """
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, H, Tq, Tk)
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


def positions_from_mask(valid: Tensor) -> Tensor:
    """Position ids from the cumulative non-pad mask: (B, T) bool -> (B, T) long, pads at 0."""
    return (valid.long().cumsum(-1) - 1).clamp_min(0)


def attention_mask(valid: Tensor) -> Tensor:
    """(B, T) key validity -> (B, 1, T, T) bool: causal, pads masked, each query sees itself."""
    t = valid.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=valid.device).tril()
    eye = torch.eye(t, dtype=torch.bool, device=valid.device)
    return ((causal & valid[:, None, :]) | eye)[:, None]


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(), nn.Linear(mlp_ratio * d_model, d_model))

    def forward(self, x: Tensor, mask: Tensor, cache: KVCache | None = None, layer: int = 0, start: int = 0,
                query_from: int = 0) -> Tensor:
        """``query_from`` > 0: keys/values from every position, outputs only from ``query_from`` on
        (the last layer of a training forward needs no outputs at prompt positions)."""
        q, k, v = self._qkv(x)
        if query_from:
            q, x, mask = q[:, :, query_from:], x[:, query_from:], mask[:, :, query_from:]
        if cache is not None:  # write this chunk's keys/values, attend over everything so far
            t = x.shape[1]
            cache.k[layer, :, :, start:start + t] = k
            cache.v[layer, :, :, start:start + t] = v
            k = cache.k[layer, :, :, :start + t]
            v = cache.v[layer, :, :, :start + t]
        return self._out(x, attention(q, k, v, mask))

    def shared_prefix(self, xp: Tensor, xr: Tensor, mask_p: Tensor, mask_r: Tensor, index: Tensor,
                      prompt_last_only: bool = False) -> tuple[Tensor, Tensor]:
        """Distinct prompts xp (B, P, C) and continuations xr (N, R, C), row n continuing prompt index[n].

        Each prompt's keys/values are computed once and gathered to its rows (the same numbers as
        running every row's prompt, without the G-fold prompt work); mask_r is (N, 1, R, P + R).
        ``prompt_last_only``: outputs only at the last prompt position (the last layer's need).
        """
        qp, kp, vp = self._qkv(xp)  # (B, H, P, Dh)
        qr, kr, vr = self._qkv(xr)  # (N, H, R, Dh)
        k = torch.cat([kp.index_select(0, index), kr], dim=2)  # (N, H, P + R, Dh)
        v = torch.cat([vp.index_select(0, index), vr], dim=2)
        if prompt_last_only:
            qp, xp, mask_p = qp[:, :, -1:], xp[:, -1:], mask_p[:, :, -1:]
        yp = attention(qp, kp, vp, mask_p)
        yr = attention(qr, k, v, mask_r)
        return self._out(xp, yp), self._out(xr, yr)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, c = x.shape
        return self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, c // self.n_heads).permute(2, 0, 3, 1, 4)  # (B, H, T, Dh) each

    def _out(self, x: Tensor, y: Tensor) -> Tensor:
        """Residual attention output then the MLP; y (B, H, T, Dh) from attention, x (B, T, C)."""
        b, t, c = x.shape
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))


class Policy(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        self.tok = nn.Embedding(VOCAB_SIZE, shape.d_model)
        self.pos = nn.Embedding(shape.max_len, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape.d_model, shape.n_heads, shape.mlp_ratio) for _ in range(shape.n_layers))
        self.ln_f = nn.LayerNorm(shape.d_model)
        self.head = nn.Linear(shape.d_model, OUTPUT_VOCAB, bias=False)
        self.apply(_init_weights)

    def forward(self, tokens: Tensor, valid: Tensor, logits_from: int = 0) -> Tensor:
        """Logits (B, T - logits_from, OUTPUT_VOCAB) for every position from ``logits_from``."""
        x = self.tok(tokens) + self.pos(positions_from_mask(valid))
        mask = attention_mask(valid)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, mask, query_from=logits_from if i == last else 0)
        return self.head(self.ln_f(x))

    def forward_shared_prefix(self, prompts: Tensor, prompt_valid: Tensor, index: Tensor, cont: Tensor,
                              cont_valid: Tensor) -> Tensor:
        """Logits (N, 1 + R, V) at the last prompt position and at every token of ``cont`` (N, R).

        ``prompts`` (B, P) are distinct, left-padded; row n of ``cont`` continues prompt ``index[n]``.
        The same logits as ``forward`` on the concatenated rows (positions, masks and layers are the
        same), but each prompt runs once, not once per row (G times for a group).
        """
        p = prompts.shape[1]
        n_prompt = prompt_valid.sum(-1).index_select(0, index)  # (N,) valid prompt tokens of each row
        cont_pos = (n_prompt[:, None] + cont_valid.long().cumsum(-1) - 1).clamp_min(0)  # = positions_from_mask(cat)
        xp = self.tok(prompts) + self.pos(positions_from_mask(prompt_valid))  # (B, P, C)
        xr = self.tok(cont) + self.pos(cont_pos)  # (N, R, C)
        mask_p = attention_mask(prompt_valid)  # (B, 1, P, P)
        prompt_keys = prompt_valid.index_select(0, index)[:, None, None, :].expand(-1, 1, cont.shape[1], p)
        mask_r = torch.cat([prompt_keys, attention_mask(cont_valid)], dim=-1)  # (N, 1, R, P + R)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            xp, xr = block.shared_prefix(xp, xr, mask_p, mask_r, index, prompt_last_only=i == last)
        x = torch.cat([xp.index_select(0, index), xr], dim=1)  # (N, 1 + R, C)
        return self.head(self.ln_f(x))

    def prefill(self, tokens: Tensor, valid: Tensor, cache: KVCache) -> Tensor:
        """Run prompts (B, P) into ``cache`` (B rows, length >= P); logits of the last position (B, V)."""
        p = tokens.shape[1]
        cache.key_valid[:, :p] = valid
        x = self.tok(tokens) + self.pos(positions_from_mask(valid))
        mask = attention_mask(valid)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, cache, i, 0)
        return self.head(self.ln_f(x[:, -1]))

    def decode(self, token: Tensor, position: Tensor, cache: KVCache, index: int) -> Tensor:
        """One new token per row (N,) at ``position`` (N,), stored at cache slot ``index``; logits (N, V)."""
        cache.key_valid[:, index] = True
        x = (self.tok(token) + self.pos(position)).unsqueeze(1)  # (N, 1, C)
        mask = cache.key_valid[:, None, None, :index + 1]  # (N, 1, 1, index+1)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, cache, i, index)
        return self.head(self.ln_f(x[:, 0]))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


def response_logprobs(policy: Policy, prompts: Tensor, prompt_valid: Tensor, responses: Tensor,
                      response_mask: Tensor, temperature: float = 1.0, with_entropy: bool = False,
                      share_prompts: bool = True) -> tuple[Tensor, Tensor | None]:
    """Per-token log-probs (N, R) of ``responses`` given ``prompts`` (and entropies if asked).

    Logits are divided by the temperature, as the sampler does (and as verl does), so at the
    sampler's temperature these are the PPO old log-probs.
    ``share_prompts``: run each distinct prompt once (``Policy.forward_shared_prefix``; a group's G
    rows share theirs) and only the responses per row; False runs every row's whole sequence (the
    reference the tests compare against; equal to round-off).
    """
    p, r = prompts.shape[1], responses.shape[1]
    if share_prompts and r > 1:
        logits = _shared_prompt_logits(policy, prompts, prompt_valid, responses, response_mask)  # (N, R, V)
    else:
        tokens = torch.cat([prompts, responses], dim=1)
        valid = torch.cat([prompt_valid, response_mask], dim=1)
        logits = policy(tokens, valid, logits_from=p - 1)[:, :-1].float()  # (N, R, V): position p-1+j predicts token j
    if temperature != 1.0:
        logits = logits / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    targets = responses.clamp(max=OUTPUT_VOCAB - 1)  # PAD rows are masked by the caller
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = entropy_from_logprobs(logp_all) if with_entropy else None
    return logp, entropy


def _shared_prompt_logits(policy: Policy, prompts: Tensor, prompt_valid: Tensor, responses: Tensor,
                          response_mask: Tensor) -> Tensor:
    """``response_logprobs``'s logits (N, R, V), each distinct prompt run once.

    Distinct (prompt, validity) rows are found by sorting (far cheaper than the prompt forward it
    saves); ``index`` maps each row to its prompt, so shuffled mini-batches need no group order. The
    last response token is not run: it predicts nothing and, attention being causal, is no earlier
    token's key. Two ways to cut the remaining padding were tried and measured no faster at this
    size (the extra kernel calls and index copies cost what the fewer tokens save): bucketing rows
    by prompt length, and packing only valid response tokens through the per-token layers.
    """
    p = prompts.shape[1]
    key = torch.cat([prompts, prompt_valid.long()], dim=1)
    distinct, index = torch.unique(key, dim=0, return_inverse=True)
    return policy.forward_shared_prefix(distinct[:, :p], distinct[:, p:].bool(), index, responses[:, :-1],
                                        response_mask[:, :-1]).float()
