"""The paper's per-step diagnostics computed from one verl training batch (a ``DataProto``).

Pure: the trainer subclass (``trainer.py``) fetches the batch after verl computed advantages and
calls ``batch_diagnostics``; tests build the same ``DataProto`` on the CPU. Every number comes from
``estimators.diagnostics`` (spec sections 3 and 6):

- success is ``score > 0`` on the summed token-level score (verl's MATH scores are 0/1, DAPO's +-1);
- group ids are verl's ``uid`` strings (one per prompt), mapped to integers;
- kappa uses ``old_log_probs`` (length-normalised, App E), once per rollout batch;
- entropy is the masked token mean of verl's per-token ``entropy``, whatever ``loss_agg_mode`` is
  (verl's ``actor/entropy`` follows the loss aggregation, verl issue #3986);
- the advantage of a rollout is the one at its first response token (outcome estimators copy one
  value to every token, verl's multi-trajectory GRPO reads it there too);
- padding rows (verl's v1 trainer pads batches with ``uid`` = ``pad...`` and zero masks) are dropped;
- the pre-update per-channel telemetry (``estimators.channels.pre_update``: entropy per channel,
  Cov(log pi, A) and its quantiles) comes from ``advantages``, ``old_log_probs`` and ``entropy``;
  the post-update ones (entropy / log-prob change per channel) need a pass verl does not make, and
  verl's ``actor/pg_clipfrac`` is not split by side, so those names are embedded-only;
- the log-prob gain on correct rollouts (Fig 2 d,h) does need that pass: the trainer subclass runs
  one extra actor forward after the update every ``logp_gain_every`` steps and ``logp_gain_correct``
  compares it with ``old_log_probs``.

Keys are emitted under ``asym/`` inside verl so they never duplicate the shared ``train/`` names that
the backend reports (``metrics.py`` maps them); see ``backends/verl/__init__.py``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from estimators import channels
from estimators import diagnostics as diag
from common import metric_names as names

PREFIX = "asym/"
PAD_UID_PREFIX = "pad"  # verl.trainer.ppo.padding_utils: pad_uid = f"pad{uuid4().hex}"


def verl_key(shared_name: str) -> str:
    """train/kappa -> asym/kappa: the key the trainer subclass logs inside verl."""
    return PREFIX + shared_name.split("/", 1)[1]


def padding_rows(uids: np.ndarray, response_mask: torch.Tensor, is_padding: np.ndarray | None = None) -> np.ndarray:
    """Rows to drop: verl's tag flag when given, else a ``pad`` uid with an all-zero mask."""
    if is_padding is not None:
        return np.asarray(is_padding, dtype=bool)
    pad_uid = np.array([str(u).startswith(PAD_UID_PREFIX) for u in uids], dtype=bool)
    empty = (response_mask.sum(-1) == 0).cpu().numpy()
    return pad_uid & empty


def batch_diagnostics(data, is_padding: np.ndarray | None = None) -> dict[str, float]:
    """Diagnostics of one rollout batch. ``data``: a ``verl.DataProto`` with ``batch`` tensors
    ``rm_scores`` (N,T), ``response_mask`` (N,T), ``old_log_probs`` (N,T), optionally ``advantages``
    and ``entropy`` (N,T), and ``non_tensor_batch["uid"]`` (N,)."""
    batch = data.batch
    uids = np.asarray(data.non_tensor_batch["uid"], dtype=object)
    keep = ~padding_rows(uids, batch["response_mask"], is_padding)
    if not keep.any():
        return {}
    # Zero the dropped rows' masks, reduce every (N, T) tensor to one value per row, then select:
    # no copy of the (N, T) tensors (a Qwen3-4B batch is ~1,000 x 4,096 tokens).
    keep_t = torch.as_tensor(keep)
    mask = batch["response_mask"].to(torch.float32) * keep_t.unsqueeze(-1).to(torch.float32)  # (N, T)
    scores = (batch["rm_scores"].to(torch.float32) * mask).sum(-1)[keep_t]  # (n,)
    rewards = (scores > 0).to(torch.float32)  # success = score > 0 (verl-notes, "Scores")
    _, inverse = np.unique(uids[keep].astype(str), return_inverse=True)
    group_ids = torch.as_tensor(inverse, dtype=torch.int64)
    lengths = mask.sum(-1)[keep_t]  # (n,)

    none_solved, all_solved = diag.solve_fractions(rewards, group_ids)
    seq_logprob = diag.sequence_mean_logprob(batch["old_log_probs"].to(torch.float32), mask)[keep_t]  # c_i, App E
    out = {
        verl_key(names.NONE_SOLVED): none_solved,
        verl_key(names.ALL_SOLVED): all_solved,
        verl_key(names.REWARD_MEAN): float(rewards.mean()),
        verl_key(names.RESPONSE_LENGTH): float(lengths.mean()),
    }
    kappa = diag.kappa(rewards, group_ids, seq_logprob)  # App E; NaN when no group is mixed
    if not math.isnan(kappa):
        out[verl_key(names.KAPPA)] = kappa
    if "advantages" in batch.keys():
        # outcome estimators copy one value to every token: read it at the first response token
        first = batch["response_mask"].to(torch.float32).argmax(-1)  # (N,)
        adv = batch["advantages"].gather(-1, first.unsqueeze(-1)).squeeze(-1).to(torch.float32)[keep_t]
        adv = adv * (lengths > 0).to(torch.float32)
        pos, neg = diag.advantage_mass(rewards, adv)
        out[verl_key(names.ADV_MASS_POS)] = pos
        out[verl_key(names.ADV_MASS_NEG)] = neg
    if "entropy" in batch.keys():
        out[verl_key(names.ENTROPY)] = diag.masked_mean(batch["entropy"].to(torch.float32), mask)  # dropped rows masked
    if "advantages" in batch.keys() and "entropy" in batch.keys():
        telemetry = channels.pre_update(batch["advantages"].to(torch.float32), batch["old_log_probs"].to(torch.float32),
                                        batch["entropy"].to(torch.float32), mask)  # dropped rows have mask 0
        out.update({verl_key(k): v for k, v in telemetry.items() if not math.isnan(v)})
    return out


def logp_gain_correct(data, new_log_probs: torch.Tensor, is_padding: np.ndarray | None = None) -> dict[str, float]:
    """Fig 2 (d,h): mean over correct rollouts of c_new - c_old, the length-normalised log-prob
    (App E's c_i) after the step's update minus before it; {} when no rollout is correct.

    ``data`` as in ``batch_diagnostics`` (``rm_scores``, ``response_mask``, ``old_log_probs``,
    ``uid``); ``new_log_probs`` (N, T): the updated actor's log-probs of the same responses."""
    batch = data.batch
    uids = np.asarray(data.non_tensor_batch["uid"], dtype=object)
    keep = torch.as_tensor(~padding_rows(uids, batch["response_mask"], is_padding))
    mask = batch["response_mask"].to(torch.float32) * keep.unsqueeze(-1).to(torch.float32)
    correct = ((batch["rm_scores"].to(torch.float32) * mask).sum(-1) > 0) & keep & (mask.sum(-1) > 0)
    if not bool(correct.any()):
        return {}
    before = diag.sequence_mean_logprob(batch["old_log_probs"].to(torch.float32), mask)
    after = diag.sequence_mean_logprob(new_log_probs.to(torch.float32), mask)
    return {verl_key(names.LOGP_GAIN_CORRECT): float((after - before)[correct].mean())}
