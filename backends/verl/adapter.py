"""verl adapter: registers ``asym_grpo`` in verl's own advantage-estimator registry, on import.

The estimators floor stays pure torch; this is where it meets verl. verl 0.9.1 imports it in every process that
runs ``import verl`` (its TaskRunner Ray actor included) through the installed entry point
``[project.entry-points."verl.plugins"] asym_grpo = "backends.verl.adapter"``, or through
``VERL_USE_EXTERNAL_MODULES=backends.verl.adapter`` for clusters started elsewhere.

Select it with ``algorithm.adv_estimator=asym_grpo`` and set its parameters with Hydra's ``+``
prefix (verl's AlgoConfig schema does not know them; they are read from the DictConfig as is):
``+algorithm.asym.variant=asym +algorithm.asym.alpha_pos=0.9 +algorithm.asym.alpha_neg=0.4``.
``variant`` is any name of ``asym estimators list`` (default ``asym``); unset alphas take the
variant's defaults; a user estimator's own parameters go in ``+algorithm.asym.params.<name>=...``.

A user's estimators (``experiments.plugins``: the ``asym.estimators`` entry points and the modules
in ``ASYM_ESTIMATOR_MODULES``) are imported here too, and each is also registered in verl's
registry under its own name, so ``get_adv_estimator_fn("<name>")`` finds it in any verl process.

Comparators that need more than rewards (``asym estimators list``: Unlikeliness ranks by old
log-probs, Entropy-adv shapes token advantages by the old policy's entropy) read verl's
``old_log_probs`` / ``entropy`` (bs, L) from keyword arguments, or from ``rollout_inputs``: verl
0.9.1's ``compute_advantage`` passes only rewards, mask, uid and config, so our trainer subclass
(``backends/verl/trainer.py``) fetches the two fields for the same rows and calls
verl inside ``with rollout_inputs(old_log_probs=..., entropy=...)``. Without them such a variant
fails with a one-line error before any update.

Alpha schedules (``estimators.schedules``): ``+algorithm.asym.schedule.<alpha_pos|alpha_neg>.<name>=...``
with ``+algorithm.asym.total_steps=N`` (the run's length). The schedule's state lives in this
process (our trainer saves and restores it with verl's checkpoint); the step is verl's
``global_steps`` when our trainer wraps the call in ``training_step(step)``, else one more than the
last call's. ``last_alphas()`` is what the last call used (the trainer logs it as
``train/alpha_pos`` / ``train/alpha_neg``).

How it departs from verl's ``grpo``: success is ``score > 0`` with score = the row's summed
token-level reward (math_dapo's +-1 and MATH's 0/1 both work), the advantage is the paper's closed
form (population std, spec section 1), and verl's padding rows (uid ``pad...``, zero mask) are left
out of every group and get advantage 0.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import numpy as np
import torch
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est

from backends.verl.render import VERL_ESTIMATOR_NAME
from estimators import schedules
from estimators.diagnostics import sequence_mean_logprob
from estimators.registry import BUILTIN, ESTIMATORS, compute_token_advantages, get_estimator
from experiments.plugins import load_installed

PAD_UID_PREFIX = "pad"  # verl.trainer.ppo.padding_utils: pad_uid = f"pad{uuid4().hex}"
DEFAULT_VARIANT = "asym"
_ROLLOUT_INPUTS: ContextVar[dict[str, torch.Tensor] | None] = ContextVar("asym_rollout_inputs", default=None)
_STEP: ContextVar[int | None] = ContextVar("asym_training_step", default=None)
_SCHEDULE_STATE: dict[str, dict[str, float]] = {}  # schedule identity -> {"alpha_pos", "alpha_neg", "step"}
_LAST_ALPHAS: dict[str, float] = {}


@contextmanager
def training_step(step: int) -> Iterator[None]:
    """The trainer's step for the schedule calls inside this block."""
    token = _STEP.set(int(step))
    try:
        yield
    finally:
        _STEP.reset(token)


def schedule_settings(config: Any) -> tuple[tuple[str, Any], ...]:
    """``config.asym.schedule.<channel>.<name>`` as sorted flat pairs ("alpha_pos.schedule", "linear")."""
    section = _section_get(_section_get(config, "asym"), "schedule")
    pairs = []
    for channel in schedules.CHANNELS:
        sub = _section_get(section, channel)
        if sub is not None and hasattr(sub, "items"):
            pairs += [(f"{channel}.{name}", value) for name, value in sub.items()]
    return tuple(sorted(pairs))


def schedule_inputs(config: Any) -> tuple[str, ...]:
    """verl batch fields the configured schedule reads (entropy-band: kappa-hat and the entropy)."""
    if not schedule_settings(config):
        return ()
    variant, alpha_pos, alpha_neg = read_asym_config(config)
    plan = _schedules(config, variant, alpha_pos, alpha_neg)
    return ("old_log_probs", "entropy") if plan.needs_logprobs else ()


def last_alphas() -> dict[str, float]:
    """The alphas of the last ``asym_grpo`` call in this process ({} before the first)."""
    return dict(_LAST_ALPHAS)


def export_schedule_state() -> dict[str, dict[str, float]]:
    """Every schedule's state in this process, JSON-ready (our trainer saves it with its checkpoint)."""
    return {ident: dict(state) for ident, state in _SCHEDULE_STATE.items()}


def restore_schedule_state(saved: dict[str, dict[str, float]]) -> None:
    """Continue the schedules from ``export_schedule_state``'s output (a resumed verl run)."""
    _SCHEDULE_STATE.clear()
    _SCHEDULE_STATE.update({ident: {k: float(v) for k, v in state.items()} for ident, state in saved.items()})


def reset_schedule_state() -> None:
    """Forget every schedule's state (a new run in the same process)."""
    _SCHEDULE_STATE.clear()
    _LAST_ALPHAS.clear()


def _schedules(config: Any, variant: str, alpha_pos: float, alpha_neg: float) -> schedules.Schedules:
    steps = _section_get(_section_get(config, "asym"), "total_steps")
    settings = schedule_settings(config)
    if settings and steps is None:
        raise ValueError("an alpha schedule needs +algorithm.asym.total_steps (the run's length)")
    return schedules.parse(settings, estimator=variant, alpha_pos=alpha_pos, alpha_neg=alpha_neg,
                           steps=int(steps) if steps is not None else 1)


def _scheduled_alphas(config: Any, variant: str, alpha_pos: float, alpha_neg: float, rewards: torch.Tensor,
                      gids: torch.Tensor, mask: torch.Tensor, old_log_probs: torch.Tensor | None,
                      entropy: torch.Tensor | None) -> tuple[float, float]:
    """This step's alphas: the schedule advanced by one step on this batch (real rows only)."""
    plan = _schedules(config, variant, alpha_pos, alpha_neg)
    if plan.is_fixed:
        alphas = plan.initial_state()
    else:
        ident = repr((variant, alpha_pos, alpha_neg, schedule_settings(config)))
        state = _SCHEDULE_STATE.get(ident) or {**plan.initial_state(), "step": 0}
        step = _STEP.get() if _STEP.get() is not None else int(state["step"]) + 1
        seq = sequence_mean_logprob(old_log_probs.to(torch.float32), mask) if old_log_probs is not None else None
        stats = schedules.batch_stats(rewards, gids, seq, entropy.to(torch.float32) if entropy is not None else None, mask)
        if plan.needs_logprobs and (seq is None or entropy is None):
            raise ValueError("an entropy-band schedule needs verl's old_log_probs and entropy; run it under "
                             "trainer.v1.trainer_mode=asym_sync (our trainer passes them)")
        alphas = schedules.advance(plan, state, step, stats)
        _SCHEDULE_STATE[ident] = {**alphas, "step": step}
    _LAST_ALPHAS.clear()
    _LAST_ALPHAS.update(alphas)
    return alphas["alpha_pos"], alphas["alpha_neg"]


@contextmanager
def rollout_inputs(**tensors: torch.Tensor) -> Iterator[None]:
    """Hand ``old_log_probs`` / ``entropy`` (bs, L) to the estimator calls inside this block."""
    token = _ROLLOUT_INPUTS.set(dict(tensors))
    try:
        yield
    finally:
        _ROLLOUT_INPUTS.reset(token)


def variant_inputs(variant: str) -> tuple[str, ...]:
    """verl batch fields a variant reads besides rewards: ``old_log_probs`` and/or ``entropy``."""
    estimator = get_estimator(variant)
    return (("old_log_probs",) if "seq_logprob" in estimator.inputs else ()) + (
        ("entropy",) if estimator.needs_token_entropy else ())


def _section_get(section: Any, key: str) -> Any:
    if section is None:
        return None
    if hasattr(section, "get"):  # DictConfig, dict, verl BaseConfig
        return section.get(key, None)
    return getattr(section, key, None)


def read_asym_config(config: Any) -> tuple[str, float, float]:
    """(variant, alpha_pos, alpha_neg) from verl's algorithm config ``config.asym.*``.

    Checked once per process and value (``_resolved``), not on every training step: the planner
    checked a trial's alphas already; this is the boundary for a user's own Hydra overrides."""
    section = _section_get(config, "asym")
    variant = _section_get(section, "variant") or DEFAULT_VARIANT
    values = (str(variant), _section_get(section, "alpha_pos"), _section_get(section, "alpha_neg"))
    try:
        return _resolved(*values)
    except TypeError:  # an unhashable value (a list): checked uncached, so its error is the estimator's own
        return _resolved.__wrapped__(*values)


@functools.lru_cache(maxsize=64)
def _resolved(variant: str, alpha_pos: Any, alpha_neg: Any) -> tuple[str, float, float]:
    estimator = get_estimator(variant)
    alpha_pos, alpha_neg = estimator.resolve_alphas(alpha_pos, alpha_neg)
    return estimator.name, alpha_pos, alpha_neg


def read_asym_params(config: Any, estimator_name: str) -> dict[str, float]:
    """The estimator's own parameters from ``config.asym.params``, checked against their ranges."""
    section = _section_get(_section_get(config, "asym"), "params")
    given = dict(section.items()) if section is not None and hasattr(section, "items") else {}
    return dict(get_estimator(estimator_name).resolve_params(given))


def uid_groups(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """verl's uid array -> (group id per row int64 (bs,), is-padding-row bool (bs,)).

    One vectorized hash pass (``pandas.factorize``, first-seen order; verl imports pandas anyway);
    the ``pad`` prefix test runs on the distinct uids only.
    """
    import pandas as pd  # deferred: pandas

    rows = np.asarray(index, dtype=object).reshape(-1)
    group_ids, uniques = pd.factorize(rows)
    if rows.size and int(group_ids.min()) < 0:
        raise ValueError("index has a missing uid (None/NaN); every row needs its prompt's uid")
    pad_group = np.char.startswith(np.asarray(uniques, dtype=object).astype(str), PAD_UID_PREFIX)
    return group_ids.astype(np.int64, copy=False), pad_group[group_ids]


def compute_asym_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    old_log_probs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    variant: str | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl estimator: (bs, L) rewards and mask, uid per row -> (advantages, returns), both (bs, L).

    Per-rollout advantage of ``config.asym.variant`` (eq 8 for ``asym``; ``variant`` forces one)
    copied to every response token, then the variant's token shaping. Returns equal advantages, as
    verl's outcome-only estimators do. ``old_log_probs`` / ``entropy``: see the module docstring.
    """
    if index is None:
        raise ValueError("asym_grpo needs the uid of every row (verl passes non_tensor_batch['uid'] as index)")
    if token_level_rewards.shape != response_mask.shape or token_level_rewards.ndim != 2:
        raise ValueError(
            f"token_level_rewards {tuple(token_level_rewards.shape)} and response_mask "
            f"{tuple(response_mask.shape)} must both be (bs, response_length)"
        )
    chosen, alpha_pos, alpha_neg = read_asym_config(config)
    if variant is not None:
        chosen = variant
        section = _section_get(config, "asym")
        alpha_pos, alpha_neg = get_estimator(variant).resolve_alphas(_section_get(section, "alpha_pos"),
                                                                     _section_get(section, "alpha_neg"))
    variant = chosen
    estimator = get_estimator(chosen)
    params = read_asym_params(config, chosen)
    provided = _ROLLOUT_INPUTS.get() or {}
    old_log_probs = old_log_probs if old_log_probs is not None else provided.get("old_log_probs")
    entropy = entropy if entropy is not None else provided.get("entropy")
    for name, value in (("old_log_probs", old_log_probs), ("entropy", entropy)):
        if name in variant_inputs(variant):
            if value is None:
                raise ValueError(f"asym_grpo variant '{variant}' needs verl's {name}; run it under "
                                 "trainer.v1.trainer_mode=asym_sync (our trainer passes it)")
            if value.shape != response_mask.shape:
                raise ValueError(f"{name} {tuple(value.shape)} must match response_mask {tuple(response_mask.shape)}")
    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1)  # (bs,)
        if bool(torch.isnan(scores).any()):
            raise ValueError("token_level_rewards contain NaN; asym_grpo needs finite scores")
        group_ids, is_pad = uid_groups(index)
        if group_ids.size != scores.shape[0]:
            raise ValueError(f"index has {group_ids.size} uids for {scores.shape[0]} rows")
        rewards = (scores > 0).to(torch.float32)  # success = score > 0
        gids = torch.from_numpy(group_ids).to(scores.device)
        inputs = {}
        if old_log_probs is not None and "seq_logprob" in estimator.inputs:
            inputs["seq_logprob"] = sequence_mean_logprob(old_log_probs.to(torch.float32), response_mask)
        real = torch.from_numpy(~is_pad).to(scores.device)
        alpha_pos, alpha_neg = _scheduled_alphas(
            config, chosen, alpha_pos, alpha_neg, rewards[real], gids[real], response_mask[real],
            old_log_probs[real] if old_log_probs is not None else None, entropy[real] if entropy is not None else None)
        if is_pad.any():
            keep = torch.from_numpy(~is_pad).to(scores.device)
            adv = torch.zeros_like(rewards)
            if bool(keep.any()):
                adv[keep] = estimator.fn(rewards[keep], gids[keep], alpha_pos, alpha_neg,
                                         **{k: v[keep] for k, v in inputs.items()}, **params)
        else:
            adv = estimator.fn(rewards, gids, alpha_pos, alpha_neg, **inputs, **params)  # (bs,)
        advantages = compute_token_advantages(
            variant, rewards, gids, response_mask, alpha_pos, alpha_neg, rollout_advantages=adv.to(token_level_rewards.dtype),
            token_entropy=entropy.to(token_level_rewards.dtype) if entropy is not None else None)  # (bs, L)
    return advantages, advantages


def register() -> None:
    """Put ``asym_grpo`` in verl's registry; a no-op when this function is already there.

    verl's decorator raises on a different function under the same name. A reload of this module
    makes a new function object: replace our own older one, but never someone else's.
    """
    existing = ADV_ESTIMATOR_REGISTRY.get(VERL_ESTIMATOR_NAME)
    if existing is not None and existing is not compute_asym_grpo_advantage:
        if getattr(existing, "__module__", None) != __name__:
            raise ValueError(
                f"verl already has an advantage estimator '{VERL_ESTIMATOR_NAME}' from "
                f"{getattr(existing, '__module__', existing)!r}; remove that plugin"
            )
        del ADV_ESTIMATOR_REGISTRY[VERL_ESTIMATOR_NAME]
    register_adv_est(VERL_ESTIMATOR_NAME)(compute_asym_grpo_advantage)


def register_user_estimators() -> list[str]:
    """Each estimator a user's module registered goes into verl's registry under its own name."""
    added = []
    for name in ESTIMATORS:
        if name in BUILTIN or name in ADV_ESTIMATOR_REGISTRY:
            continue

        def compute(token_level_rewards, response_mask, index=None, config=None, _variant=name, **kwargs):
            return compute_asym_grpo_advantage(token_level_rewards, response_mask, index=index, config=config,
                                               variant=_variant, **kwargs)

        compute.__module__ = __name__
        register_adv_est(name)(compute)
        added.append(name)
    return added


register()
load_installed()
register_user_estimators()
