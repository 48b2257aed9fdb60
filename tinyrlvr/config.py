"""EngineConfig: every setting of one embedded RLVR run, typed and validated (stdlib only, no torch).

``EngineConfig.create(**kwargs)`` is the front door: it rejects unknown keys, wrong types and
out-of-range values with a one-line ValueError that says what to change. ``DEFAULT_SETTINGS`` are
the default-size values of the non-trial fields (what the embedded model preset copies) and
``SMOKE_OVERRIDES`` shrink a run to seconds (tests, quick start).

Defaults come from the feasibility probe (shared/engine-notes.md) unless a comment says otherwise;
the paper's own values (spec section 6) are named where they apply.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estimators.registry import get_estimator
from estimators.schedules import parse

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-sum-norm")
WARMUP_ERRORS = ("digit", "carry")  # tinyrlvr.base_model: the demonstrations' error model
POLICY_LOSSES = ("vanilla", "clip_cov", "kl_cov")  # tinyrlvr.policy_losses; verl's actor.policy_loss.loss_mode names (Cui et al. 2505.22617)


def default_cache_dir() -> str:
    """Where base models are cached: $ASYM_CACHE_DIR, else ~/.cache/asym."""
    return os.environ.get("ASYM_CACHE_DIR") or str(Path.home() / ".cache" / "asym")


@dataclass(frozen=True)
class EngineConfig:
    """One run of the embedded engine. Build it with ``EngineConfig.create``."""

    # --- the trial: what a study varies ---
    estimator: str  # a name in estimators.ESTIMATORS
    alpha_pos: float | None = None  # None: the estimator's default (resolved in __post_init__)
    alpha_neg: float | None = None
    estimator_params: tuple[tuple[str, float], ...] = ()  # a user estimator's own parameters (sorted pairs)
    # alpha schedules (estimators.schedules): sorted ("alpha_pos.schedule", "linear")-style pairs; () = fixed
    alpha_schedule: tuple[tuple[str, Any], ...] = ()
    seed: int = 0  # prompt stream and sampler randomness (common random numbers across configs)
    steps: int = 100  # RL steps
    entropy_coeff: float = 0.0  # entropy bonus (the "w/ Entro.Reg" baselines only)
    clip_low: float = 0.2  # PPO epsilon, lower side (spec section 5; verl default)
    clip_high: float = 0.2  # upper side; Clip-higher (DAPO) uses 0.28
    loss_agg: str = "token-mean"  # spec section 5; "seq-mean-token-sum-norm" is Dr.GRPO's (verl's name)
    policy_loss: str = "vanilla"  # verl's actor.policy_loss.loss_mode: PPO-clip, or Cui et al.'s clip_cov / kl_cov

    # --- RL optimisation (engine-notes probe values) ---
    lr: float = 1e-4  # AdamW
    weight_decay: float = 0.01  # verl's actor default
    prompts_per_step: int = 64
    group_size: int = 8  # G, rollouts per prompt (spec section 6: 8)
    ppo_epochs: int = 1
    mini_batches: int = 2  # optimizer steps per epoch (paper: mini-batch < batch)
    grad_clip: float = 1.0
    temperature: float = 1.0  # rollout sampling temperature
    top_p: float = 1.0
    max_new_tokens: int = 8  # longest answer (tier+1 digits) + end token + 2 spare
    zero_uniform_groups: bool = False  # give all-solved / none-solved groups advantage 0 (all estimators)
    center_groups: bool = False  # A <- A - mean_g(A) per group, all estimators (issue 25's group-mean control)

    # --- evaluation (Avg@k on the held-out split of every tier) ---
    eval_every: int = 10  # spec section 6: curves every 10 steps
    eval_samples: int = 4  # k of Avg@k
    eval_temperature: float = 0.4  # spec section 6: main tables at 0.4; 0 = greedy
    eval_prompts_per_tier: int = 64
    tiers: tuple[int, ...] = (1, 2, 3, 4)  # digits per operand; each tier plays one benchmark
    # the hard split, its own benchmark (tinyrlvr.difficulty, tinyrlvr.protocol; issue 24, ours):
    # held-out prompts with >= eval_hard_min_carries carries, Avg@eval_hard_samples at eval_temperature
    # (256 x 8: standard error <= 0.02 per evaluation), and pass@k for k = 1..eval_pass_k at T = 1 from
    # eval_pass_samples samples per prompt (unbiased estimator) at every evaluation; 0 prompts: none
    eval_hard_prompts: int = 256
    eval_hard_samples: int = 8
    eval_hard_min_carries: int = 3
    eval_pass_samples: int = 16
    eval_pass_k: int = 16

    # --- policy size ---
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    mlp_ratio: int = 4

    # --- base model: supervised warm-up on imperfect demonstrations (cached by its config) ---
    # Calibrated testbed (issue 11, ours): a tier-t demonstration carries one wrong digit with
    # probability warmup_corrupt_frac[t], so a base model that has learnt the demonstrations solves a
    # tier-t prompt with probability about 1 - frac: every tier is partly solved, most groups of 8
    # are mixed at step 0, and the difficulty does not hinge on when a phase transition happens.
    warmup_steps: int = 1500  # fixed length; the last checkpoint is the base model (no selection)
    warmup_batch: int = 256
    warmup_lr: float = 1e-3
    warmup_corrupt_frac: tuple[float, ...] = (0.1, 0.2, 0.3, 0.45)  # one per tier, easy to hard
    warmup_tier_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)  # uniform: every tier converges by ~1000 steps
    # The error model of the demonstrations: "digit", one wrong digit at warmup_corrupt_frac (above);
    # "carry", systematic: the i-th carry of a sum is forgotten with probability
    # warmup_carry_drop[min(i, len) - 1] (tinyrlvr.difficulty.drop_carries; issue 24, ours). With
    # "carry" and warmup_relearn_steps > 0, the first phase is the digit-error warm-up and the second
    # phase teaches the carry errors (warmup_relearn_corrupt_frac is then unused).
    warmup_errors: str = "digit"
    warmup_carry_drop: tuple[float, ...] = (0.15, 0.45, 0.75)
    # An optional second phase from the base model above, on demonstrations corrupted at other rates
    # (0 steps: none): the same learnt addition, then taught to be wrong more often than right. It was
    # embedded-kappa-neg's recipe until RL was seen to remove such taught noise within a few steps.
    warmup_relearn_steps: int = 0
    warmup_relearn_corrupt_frac: tuple[float, ...] = (0.6, 0.65, 0.7, 0.75)
    warmup_eval_every: int = 250  # checkpoints evaluated for the report (training-split prompts, T = 1)
    warmup_eval_prompts: int = 64  # validation prompts per tier, 4 samples each
    warmup_seed: int = 0  # model init and demonstration stream
    warmup_threads: int = 1  # fixed so the base model does not depend on the caller's threads; 1 thread
    # is also the fast choice on a busy machine (2 OpenMP threads on contended cores run ~10x slower)

    # --- runtime (not part of a trial's identity) ---
    device: str = "cpu"
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    cache_dir: str = field(default_factory=default_cache_dir)

    def __post_init__(self) -> None:
        est = get_estimator(self.estimator)
        alpha_pos, alpha_neg = est.resolve_alphas(self.alpha_pos, self.alpha_neg)
        object.__setattr__(self, "alpha_pos", alpha_pos)
        object.__setattr__(self, "alpha_neg", alpha_neg)
        object.__setattr__(self, "estimator_params", est.resolve_params(dict(self.estimator_params)))
        self.schedules()  # checks the schedule settings against the estimator and the run's length
        _check_ranges(self)

    @classmethod
    def create(cls, **kwargs: Any) -> "EngineConfig":
        """Validated config from keyword settings (lists accepted for tuple fields)."""
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ValueError(f"unknown engine setting(s) {', '.join(unknown)}; known: {', '.join(names)}")
        if "estimator" not in kwargs:
            raise ValueError("engine setting 'estimator' is required (e.g. estimator='grpo')")
        params = kwargs.pop("estimator_params", None) or ()  # checked by the estimator's own ranges
        schedule = kwargs.pop("alpha_schedule", None) or ()  # checked by estimators.schedules.parse
        coerced = {key: _coerce(key, value, hints[key]) for key, value in kwargs.items()}
        return cls(**coerced, estimator_params=tuple(sorted(dict(params).items())),
                   alpha_schedule=tuple(sorted(dict(schedule).items())))

    def schedules(self):
        """The run's alpha schedules (``estimators.schedules.Schedules``), checked."""

        return parse(self.alpha_schedule, estimator=self.estimator, alpha_pos=self.alpha_pos,
                     alpha_neg=self.alpha_neg, steps=self.steps)

    def replace(self, **changes: Any) -> "EngineConfig":
        """A copy with some settings changed, validated like ``create``.

        A new estimator without new alphas takes its own default alphas.
        """
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if "estimator" in changes:
            current.update(alpha_pos=None, alpha_neg=None)
        return EngineConfig.create(**{**current, **changes})

    @property
    def max_prompt_len(self) -> int:
        return 2 * max(self.tiers) + 3  # BOS a + b =

    def base_model_key(self) -> str:
        """Hash of everything that shapes the base model (model size, task, warm-up)."""
        blob = json.dumps({"format": BASE_MODEL_FORMAT, **self.base_model_settings()}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def base_model_settings(self) -> dict[str, Any]:
        """The settings that shape the base model (those the warm-up reads, and only those)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name in _BASE_MODEL_FIELDS}
        if not self.warmup_relearn_steps:  # no second phase: its settings shape nothing
            fields = {k: v for k, v in fields.items() if not k.startswith("warmup_relearn_")}
        if self.warmup_errors == "digit":  # the settings of the carry errors shape nothing (older keys unchanged)
            unused: tuple[str, ...] = ("warmup_errors", "warmup_carry_drop")
        elif self.warmup_relearn_steps:  # phase 1 digit errors, phase 2 carry errors (base_model.warm_up)
            unused = ("warmup_relearn_corrupt_frac",)
        else:
            unused = ("warmup_corrupt_frac",)
        return {k: v for k, v in fields.items() if k not in unused}

    def trial_dict(self) -> dict[str, Any]:
        """All settings except the runtime ones (device, threads, cache_dir): a run's identity."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _RUNTIME_FIELDS}


BASE_MODEL_FORMAT = 2  # bump when the task encoding or the warm-up procedure changes
_RUNTIME_FIELDS = ("device", "threads", "cache_dir")
_TRIAL_FIELDS = ("estimator", "alpha_pos", "alpha_neg", "estimator_params", "alpha_schedule", "seed", "steps",
                 "entropy_coeff", "clip_low", "clip_high", "loss_agg", "policy_loss")
_BASE_MODEL_FIELDS = ("tiers", "max_new_tokens", "n_layers", "d_model", "n_heads", "mlp_ratio") + tuple(
    f.name for f in dataclasses.fields(EngineConfig) if f.name.startswith("warmup_"))

DEFAULT_SETTINGS: dict[str, Any] = {
    f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
    for f in dataclasses.fields(EngineConfig)
    if f.name not in _TRIAL_FIELDS + _RUNTIME_FIELDS
}

SMOKE_OVERRIDES: dict[str, Any] = {
    # A run of a few seconds: small batch, few eval prompts, and a smaller model whose quick
    # warm-up is cached under its own key (the key hashes the model and warm-up fields).
    "prompts_per_step": 8,
    "group_size": 4,
    "mini_batches": 1,
    "eval_every": 5,
    "eval_samples": 2,
    "eval_prompts_per_tier": 8,
    "tiers": (1, 2),
    "n_layers": 2,  # one layer does not learn the addition within a smoke budget
    "d_model": 64,
    "n_heads": 2,
    "warmup_steps": 1000,
    "warmup_batch": 128,
    "warmup_lr": 3e-3,
    "warmup_corrupt_frac": (0.3, 0.45),  # mixed groups at every step of a smoke run (tests rely on it)
    "warmup_tier_weights": (1.0, 1.0),
    "warmup_eval_every": 50,
    "warmup_eval_prompts": 16,
    "warmup_relearn_steps": 0,  # every embedded preset's smoke run shares this one shipped base model
    "warmup_errors": "digit",  # (the smoke base above, whatever the preset's error model)
    "eval_hard_prompts": 16,  # a small hard split: tier 2 has at most 2 carries
    "eval_hard_samples": 2,
    "eval_hard_min_carries": 2,
    "eval_pass_samples": 4,
    "eval_pass_k": 4,
}


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type hint; ints pass for floats, lists for tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"engine setting {key} must be a non-empty list of {_type_name(args[0])}, got {value!r}")
        return tuple(_coerce(key, v, args[0]) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"engine setting {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"engine setting {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"engine setting {key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"engine setting {key} must be a string, got {value!r}")
        return value
    return value


def _check_ranges(cfg: EngineConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(message)

    need(cfg.steps >= 1, f"steps must be >= 1, got {cfg.steps}")
    need(cfg.policy_loss in POLICY_LOSSES,
         f"policy_loss must be one of {', '.join(POLICY_LOSSES)}, got '{cfg.policy_loss}'")
    need(cfg.loss_agg in LOSS_AGG_MODES, f"loss_agg must be one of {', '.join(LOSS_AGG_MODES)}, got '{cfg.loss_agg}'")
    # clip_low = 1 clamps rho at 0 from below (Clip-Cov's recipe runs PPO's clip at 1 on both sides)
    need(math.isfinite(cfg.clip_low) and 0.0 <= cfg.clip_low <= 1.0, f"clip_low must be in [0, 1], got {cfg.clip_low}")
    need(math.isfinite(cfg.clip_high) and cfg.clip_high >= 0.0, f"clip_high must be >= 0, got {cfg.clip_high}")
    need(math.isfinite(cfg.entropy_coeff) and cfg.entropy_coeff >= 0, f"entropy_coeff must be >= 0, got {cfg.entropy_coeff}")
    for name in ("lr", "warmup_lr", "grad_clip"):
        need(getattr(cfg, name) > 0, f"{name} must be > 0, got {getattr(cfg, name)}")
    for name in ("prompts_per_step", "ppo_epochs", "mini_batches", "eval_every", "eval_samples",
                 "eval_prompts_per_tier", "n_layers", "d_model", "n_heads", "mlp_ratio", "warmup_steps",
                 "warmup_batch", "warmup_eval_every", "warmup_eval_prompts", "warmup_threads", "max_new_tokens"):
        need(getattr(cfg, name) >= 1, f"{name} must be >= 1, got {getattr(cfg, name)}")
    need(cfg.group_size >= 2, f"group_size must be >= 2 (a group needs a baseline), got {cfg.group_size}")
    need(cfg.mini_batches <= cfg.prompts_per_step * cfg.group_size,
         f"mini_batches ({cfg.mini_batches}) must not exceed the rollouts per step ({cfg.prompts_per_step * cfg.group_size})")
    need(cfg.temperature > 0, f"temperature must be > 0 for rollouts, got {cfg.temperature}")
    need(cfg.eval_temperature >= 0, f"eval_temperature must be >= 0 (0 = greedy), got {cfg.eval_temperature}")
    need(0 < cfg.top_p <= 1, f"top_p must be in (0, 1], got {cfg.top_p}")
    need(all(1 <= t <= 6 for t in cfg.tiers) and len(set(cfg.tiers)) == len(cfg.tiers),
         f"tiers must be distinct digit counts in 1..6, got {cfg.tiers}")
    need(cfg.max_new_tokens >= max(cfg.tiers) + 2,
         f"max_new_tokens must be >= {max(cfg.tiers) + 2} (longest answer + end token) for tiers {cfg.tiers}")
    need(cfg.d_model % cfg.n_heads == 0, f"d_model ({cfg.d_model}) must be divisible by n_heads ({cfg.n_heads})")
    need(len(cfg.warmup_tier_weights) == len(cfg.tiers) and all(w > 0 for w in cfg.warmup_tier_weights),
         f"warmup_tier_weights needs one positive weight per tier ({len(cfg.tiers)}), got {cfg.warmup_tier_weights}")
    need(len(cfg.warmup_corrupt_frac) == len(cfg.tiers) and all(0 <= c <= 1 for c in cfg.warmup_corrupt_frac),
         f"warmup_corrupt_frac needs one value in [0, 1] per tier ({len(cfg.tiers)}), got {cfg.warmup_corrupt_frac}")
    need(cfg.warmup_errors in WARMUP_ERRORS, f"warmup_errors must be one of {', '.join(WARMUP_ERRORS)}, got '{cfg.warmup_errors}'")
    need(all(0 <= c <= 1 for c in cfg.warmup_carry_drop),
         f"warmup_carry_drop needs probabilities in [0, 1], got {cfg.warmup_carry_drop}")
    for name in ("eval_hard_prompts", "eval_hard_min_carries"):
        need(getattr(cfg, name) >= 0, f"{name} must be >= 0, got {getattr(cfg, name)}")
    need(cfg.eval_hard_prompts == 0 or max(cfg.tiers) >= cfg.eval_hard_min_carries,
         f"eval_hard_min_carries ({cfg.eval_hard_min_carries}) exceeds what tiers {cfg.tiers} can have "
         f"(a t-digit sum has at most t carries); lower it or set eval_hard_prompts 0")
    for name in ("eval_hard_samples", "eval_pass_samples", "eval_pass_k"):
        need(getattr(cfg, name) >= 1, f"{name} must be >= 1, got {getattr(cfg, name)}")
    need(cfg.eval_pass_k <= cfg.eval_pass_samples,
         f"eval_pass_k ({cfg.eval_pass_k}) must not exceed eval_pass_samples ({cfg.eval_pass_samples}): "
         "the unbiased pass@k needs at least k samples per prompt")
    need(cfg.warmup_relearn_steps >= 0, f"warmup_relearn_steps must be >= 0, got {cfg.warmup_relearn_steps}")
    need(cfg.warmup_relearn_steps == 0 or cfg.warmup_errors == "carry" or (len(cfg.warmup_relearn_corrupt_frac) == len(cfg.tiers)
                                           and all(0 <= c <= 1 for c in cfg.warmup_relearn_corrupt_frac)),
         f"warmup_relearn_corrupt_frac needs one value in [0, 1] per tier ({len(cfg.tiers)}), got {cfg.warmup_relearn_corrupt_frac}")
    need(cfg.threads is None or cfg.threads >= 1, f"threads must be >= 1, got {cfg.threads}")
