"""The RL loop: rollouts -> rewards -> advantages (estimators/) -> PPO update, with the paper's metrics.

``train(cfg, on_step)`` reports ``on_step(0, eval)`` for the base model, then every step's train
metrics (``common.metric_names.TRAIN_METRICS``) plus, every ``eval_every`` steps and at the
last step, ``eval/<tier>/accuracy`` and ``eval/mean_accuracy``. Every estimator runs through the
same code path: the only estimator-specific lines are ``Estimator.run`` (values the planner checked) and
``compute_token_advantages`` (the registry's token shaping, e.g. Cheng et al.'s entropy term).

Metric notes:
- ``train/entropy`` is the token mean of the sampling distribution's entropy (old policy, at the
  rollout temperature) over response tokens, whatever the loss aggregation.
- ``train/entropy_probe`` is the same entropy on a fixed probe set (held-out prompts with their
  correct answers, teacher-forced, before the update), so an entropy curve does not depend only on
  which tokens a method happened to sample (embedded only).
- ``train/prop1_gap_exact`` / ``train/prop1_gap_linear``: Proposition 1's predicted entropy change
  of this step's update minus REINFORCE's on the same batch, per unit eta (``estimators.prop1``):
  exact within-group (from the rollout advantages, before any token shaping) and eq 6's linearised.
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

from common import metric_names as M
from estimators import channels, compute_token_advantages, diagnostics, get_estimator, prop1, schedules
from estimators.advantages import broadcast_to_tokens
from tinyrlvr.base_model import atomic_save, get_base_model, load_policy
from tinyrlvr.config import EngineConfig
from tinyrlvr.evaluate import EntropyProbeSet, Evaluator, entropy_probe_set, probe_entropy
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
    schedule_state = cfg.schedules().initial_state()  # the alphas; a checkpoint restores them
    start = _load_checkpoint(checkpoint_dir, cfg, policy, optimizer, evaluator, schedule_state) if checkpoint_dir else 0
    if start == 0:
        on_step(0, evaluator.metrics(policy, 0))
    for step in range(start + 1, cfg.steps + 1):
        metrics = rl_step(policy, optimizer, cfg, step, schedule_state)
        schedule_state = {"alpha_pos": metrics[M.ALPHA_POS], "alpha_neg": metrics[M.ALPHA_NEG]}
        if evaluator.protocol.evaluates(step, cfg.steps):
            metrics.update(evaluator.metrics(policy, step))
        on_step(step, metrics)
        if checkpoint_dir is not None and (step % checkpoint_every == 0 or step == cfg.steps):
            _save_checkpoint(checkpoint_dir, cfg, policy, optimizer, step, evaluator.curve, schedule_state)


def rl_step(policy, optimizer, cfg: EngineConfig, step: int,
            schedule_state: dict[str, float] | None = None) -> dict[str, float]:
    """One RL step: sample, score, alphas (the schedule, from ``schedule_state``: the previous
    step's alphas), advantages, update; returns the train metrics, the step's alphas included."""
    batch = collect(policy, cfg, step)
    seq_logp_old = diagnostics.sequence_mean_logprob(batch.old_logp, batch.response_mask)  # c_i, App E
    plan = cfg.schedules()
    stats = (schedules.batch_stats(batch.rewards, batch.group_ids, seq_logp_old, batch.entropy, batch.response_mask)
             if not plan.is_fixed else None)
    alphas = schedules.advance(plan, schedule_state or plan.initial_state(), step, stats)
    alpha_pos, alpha_neg = alphas["alpha_pos"], alphas["alpha_neg"]
    estimator = get_estimator(cfg.estimator)
    # the alphas and parameters were checked once, by the planner (a schedule's range too): run, no re-check
    advantages = estimator.run(batch.rewards, batch.group_ids, alpha_pos, alpha_neg, cfg.estimator_params,
                               seq_logprob=seq_logp_old)
    if cfg.zero_uniform_groups:  # same switch for every estimator: uniform groups carry no signal
        k = torch.zeros_like(batch.rewards).index_add_(0, batch.group_ids, batch.rewards)[batch.group_ids]
        advantages = torch.where((k == 0) | (k == cfg.group_size), torch.zeros_like(advantages), advantages)
    if cfg.center_groups:  # the group-mean control: removes the shift term Proposition 1 does not contain
        advantages = prop1.center_groups(advantages, batch.group_ids)
    none_solved, all_solved = diagnostics.solve_fractions(batch.rewards, batch.group_ids)
    kappa = diagnostics.kappa(batch.rewards, batch.group_ids, seq_logp_old)
    mass_pos, mass_neg = diagnostics.advantage_mass(batch.rewards, advantages)
    metrics = {
        M.ENTROPY: diagnostics.masked_mean(batch.entropy, batch.response_mask),
        M.REWARD_MEAN: float(batch.rewards.mean()),
        M.NONE_SOLVED: none_solved,
        M.ALL_SOLVED: all_solved,
        M.KAPPA: kappa,
        M.PROP1_GAP_EXACT: prop1.covariance_gap(batch.rewards, batch.group_ids, seq_logp_old, advantages,
                                                2 * batch.rewards - 1),
        M.PROP1_GAP_LINEAR: (prop1.linear_alpha_gap(kappa, alpha_pos, alpha_neg) if estimator.alpha_family
                             else float("nan")),
        M.ADV_MASS_POS: mass_pos,
        M.ADV_MASS_NEG: mass_neg,
        M.RESPONSE_LENGTH: float(batch.response_mask.sum(-1).float().mean()),
        M.ALPHA_POS: alpha_pos,
        M.ALPHA_NEG: alpha_neg,
        M.ENTROPY_PROBE: probe_entropy(policy, _probe_set(cfg), cfg.temperature),
    }
    token_adv = compute_token_advantages(cfg.estimator, batch.rewards, batch.group_ids, batch.response_mask,
                                         alpha_pos, alpha_neg, token_entropy=batch.entropy,
                                         rollout_advantages=advantages)
    metrics.update(channels.pre_update(token_adv, batch.old_logp, batch.entropy, batch.response_mask))
    shaping = estimator.token_shaping  # applied per mini-batch with the updated policy's entropy
    update_adv = broadcast_to_tokens(advantages, batch.response_mask) if shaping is not None else token_adv
    clip = ppo_update(policy, optimizer, batch, update_adv, cfg, step, token_shaping=shaping)
    metrics[M.CLIP_FRAC], metrics[M.CLIP_FRAC_UPPER], metrics[M.CLIP_FRAC_LOWER] = clip["clip_frac"], clip["upper"], clip["lower"]
    new_logp, new_entropy = _after_update(policy, batch, cfg)
    metrics[M.LOGP_GAIN_CORRECT] = logp_gain_correct(batch, seq_logp_old, new_logp)
    metrics.update(channels.post_update(token_adv, batch.response_mask, batch.old_logp, new_logp, batch.entropy,
                                        new_entropy))
    return metrics


_PROBE_SETS: dict[tuple, EntropyProbeSet] = {}


def _probe_set(cfg: EngineConfig) -> EntropyProbeSet:
    """The fixed entropy probe set of ``cfg``'s task, built once per process."""
    key = (cfg.tiers, cfg.eval_prompts_per_tier, cfg.max_new_tokens, cfg.device)
    if key not in _PROBE_SETS:
        _PROBE_SETS[key] = entropy_probe_set(cfg)
    return _PROBE_SETS[key]


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
    if not d["alpha_schedule"]:  # fixed alphas: checkpoints from before schedules existed still match
        d.pop("alpha_schedule")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _save_checkpoint(directory: Path, cfg: EngineConfig, policy, optimizer, step: int,
                     eval_curve: list[tuple[int, float]], schedule_state: dict[str, float]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    blob = {"step": step, "model": policy.state_dict(), "optimizer": optimizer.state_dict(),
            "identity": _identity(cfg), "torch_rng": torch.get_rng_state(),
            "eval_curve": [[s, a] for s, a in eval_curve],  # the running area's points so far
            "schedule_state": dict(schedule_state)}
    atomic_save(blob, directory / CHECKPOINT_NAME)


def _load_checkpoint(directory: Path, cfg: EngineConfig, policy, optimizer, evaluator: Evaluator,
                     schedule_state: dict[str, float]) -> int:
    """Restore the checkpoint in ``directory`` if any (the evaluator's curve and ``schedule_state``
    updated in place); return its step (0 when there is none)."""
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
    schedule_state.update(blob.get("schedule_state") or {})  # absent: a checkpoint from before schedules
    return int(blob["step"])
