"""The RL loop: rollouts -> rewards -> advantages (estimators/) -> PPO update, with the paper's metrics.

``train(cfg, on_step)`` reports ``on_step(0, eval)`` for the base model, then every step's train
metrics (``estimators.metric_names.TRAIN_METRICS``) plus, every ``eval_every`` steps and at the
last step, ``eval/<tier>/accuracy`` and ``eval/mean_accuracy``. Every estimator runs through the
same code path: the only estimator-specific lines are ``compute_advantages`` and
``compute_token_advantages`` (the registry's token shaping, e.g. Cheng et al.'s entropy term).

Metric notes:
- ``train/entropy`` is the token mean of the sampling distribution's entropy (old policy, at the
  rollout temperature) over response tokens, whatever the loss aggregation.
- ``train/kappa`` is App E's estimator from the sampler's log-probs, before the update; NaN when no
  group of the step is mixed (the estimator is undefined then).
- ``train/logp_gain_correct`` is the mean over correct rollouts of the change in length-normalized
  log-prob across the step's update (recomputed after it); NaN when no rollout is correct.
- the per-channel telemetry (``metric_names.CHANNEL_METRICS``, ``estimators.channels``) comes from
  the rollout batch before the update and from one forward pass over the same batch after it; a
  channel with no rollout in a step reports NaN.

Checkpoints (model, optimizer, step; atomic) go to ``checkpoint_dir`` every ``checkpoint_every``
steps and at the end; a run finding one continues after its step. All randomness is drawn from
per-step named streams (``seeding``), so a resumed run reproduces the uninterrupted one exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from estimators import channels, compute_advantages, compute_token_advantages, diagnostics
from estimators import metric_names as M
from tinyrlvr.base_model import atomic_save, get_base_model, load_policy
from tinyrlvr.config import EngineConfig
from tinyrlvr.evaluate import Evaluator
from tinyrlvr.model import response_logprobs
from tinyrlvr.rollout import RolloutBatch, collect
from tinyrlvr.update import ppo_update

CHECKPOINT_NAME = "engine-checkpoint.pt"
StepCallback = Callable[[int, dict[str, float]], None]


def train(cfg: EngineConfig, on_step: StepCallback, checkpoint_dir: Path | None = None,
          checkpoint_every: int = 10) -> None:
    """Run ``cfg.steps`` RL steps from the cached base model, reporting each step to ``on_step``."""
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        _run(cfg, on_step, Path(checkpoint_dir) if checkpoint_dir is not None else None, checkpoint_every)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: EngineConfig, on_step: StepCallback, checkpoint_dir: Path | None, checkpoint_every: int) -> None:
    policy = load_policy(get_base_model(cfg), cfg.device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    evaluator = Evaluator(cfg)
    start = _load_checkpoint(checkpoint_dir, cfg, policy, optimizer, evaluator) if checkpoint_dir else 0
    if start == 0:
        on_step(0, evaluator.metrics(policy, 0))
    for step in range(start + 1, cfg.steps + 1):
        metrics = rl_step(policy, optimizer, cfg, step)
        if evaluator.protocol.evaluates(step, cfg.steps):
            metrics.update(evaluator.metrics(policy, step))
        on_step(step, metrics)
        if checkpoint_dir is not None and (step % checkpoint_every == 0 or step == cfg.steps):
            _save_checkpoint(checkpoint_dir, cfg, policy, optimizer, step, evaluator.curve)


def rl_step(policy, optimizer, cfg: EngineConfig, step: int) -> dict[str, float]:
    """One RL step: sample, score, advantages, update; returns the train metrics."""
    batch = collect(policy, cfg, step)
    seq_logp_old = diagnostics.sequence_mean_logprob(batch.old_logp, batch.response_mask)  # c_i, App E
    advantages = compute_advantages(cfg.estimator, batch.rewards, batch.group_ids, cfg.alpha_pos, cfg.alpha_neg,
                                    dict(cfg.estimator_params), seq_logprob=seq_logp_old)
    if cfg.zero_uniform_groups:  # same switch for every estimator: uniform groups carry no signal
        k = torch.zeros_like(batch.rewards).index_add_(0, batch.group_ids, batch.rewards)[batch.group_ids]
        advantages = torch.where((k == 0) | (k == cfg.group_size), torch.zeros_like(advantages), advantages)
    none_solved, all_solved = diagnostics.solve_fractions(batch.rewards, batch.group_ids)
    mass_pos, mass_neg = diagnostics.advantage_mass(batch.rewards, advantages)
    metrics = {
        M.ENTROPY: diagnostics.masked_mean(batch.entropy, batch.response_mask),
        M.REWARD_MEAN: float(batch.rewards.mean()),
        M.NONE_SOLVED: none_solved,
        M.ALL_SOLVED: all_solved,
        M.KAPPA: diagnostics.kappa(batch.rewards, batch.group_ids, seq_logp_old),
        M.ADV_MASS_POS: mass_pos,
        M.ADV_MASS_NEG: mass_neg,
        M.RESPONSE_LENGTH: float(batch.response_mask.sum(-1).float().mean()),
    }
    token_adv = compute_token_advantages(cfg.estimator, batch.rewards, batch.group_ids, batch.response_mask,
                                         cfg.alpha_pos, cfg.alpha_neg, token_entropy=batch.entropy,
                                         rollout_advantages=advantages)
    metrics.update(channels.pre_update(token_adv, batch.old_logp, batch.entropy, batch.response_mask))
    clip = ppo_update(policy, optimizer, batch, token_adv, cfg, step)
    metrics[M.CLIP_FRAC], metrics[M.CLIP_FRAC_UPPER], metrics[M.CLIP_FRAC_LOWER] = clip["clip_frac"], clip["upper"], clip["lower"]
    new_logp, new_entropy = _after_update(policy, batch, cfg)
    metrics[M.LOGP_GAIN_CORRECT] = logp_gain_correct(batch, seq_logp_old, new_logp)
    metrics.update(channels.post_update(token_adv, batch.response_mask, batch.old_logp, new_logp, batch.entropy,
                                        new_entropy))
    return metrics


@torch.no_grad()
def _after_update(policy, batch: RolloutBatch, cfg: EngineConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Token log-probs and entropies (N, T) of the step's rollouts under the updated policy."""
    logp, entropy = response_logprobs(policy, batch.prompts, batch.prompt_valid, batch.responses,
                                      batch.response_mask, cfg.temperature, with_entropy=True)
    m = batch.response_mask.to(logp.dtype)
    return logp * m, entropy * m


def logp_gain_correct(batch: RolloutBatch, seq_logp_old: torch.Tensor, new_logp: torch.Tensor) -> float:
    """Mean over correct rollouts of c_new - c_old (length-normalized log-prob), Fig 2 d,h."""
    rows = batch.rewards.bool()
    if not bool(rows.any()):
        return float("nan")
    seq_new = diagnostics.sequence_mean_logprob(new_logp[rows], batch.response_mask[rows])
    return float((seq_new - seq_logp_old[rows]).mean())


def _identity(cfg: EngineConfig) -> dict:
    """What must match for a checkpoint to be resumed (steps may grow: a run can be extended)."""
    d = cfg.trial_dict()
    d.pop("steps")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _save_checkpoint(directory: Path, cfg: EngineConfig, policy, optimizer, step: int,
                     eval_curve: list[tuple[int, float]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    blob = {"step": step, "model": policy.state_dict(), "optimizer": optimizer.state_dict(),
            "identity": _identity(cfg), "torch_rng": torch.get_rng_state(),
            "eval_curve": [[s, a] for s, a in eval_curve]}  # the running area's points so far
    atomic_save(blob, directory / CHECKPOINT_NAME)


def _load_checkpoint(directory: Path, cfg: EngineConfig, policy, optimizer, evaluator: Evaluator) -> int:
    """Restore the checkpoint in ``directory`` if any; return its step (0 when there is none)."""
    path = directory / CHECKPOINT_NAME
    if not path.exists():
        return 0
    blob = torch.load(path, map_location=cfg.device, weights_only=True)
    if blob["identity"] != _identity(cfg):
        diff = sorted(k for k in _identity(cfg) if blob["identity"].get(k) != _identity(cfg)[k])
        raise ValueError(f"checkpoint {path} belongs to another configuration (differs in {', '.join(diff)}); "
                         "use an empty checkpoint directory")
    policy.load_state_dict(blob["model"])
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["torch_rng"])
    evaluator.curve = [(int(s), float(a)) for s, a in blob.get("eval_curve", [])]
    return int(blob["step"])
