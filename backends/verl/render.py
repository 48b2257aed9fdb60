"""A verl ``TrialSpec`` -> verl 0.9.1 Hydra overrides: one pure function, golden-tested.

``render_overrides(trial, paths)`` is the only place that knows verl's config keys. Each value
names its source: [v2]/[v1*]/[NF] as in ``shared/paper/spec.md``, or "verl" where verl's own
recipe is followed. How it departs from a plain verl GRPO script:

- our estimators run as ``algorithm.adv_estimator=asym_grpo`` with ``+algorithm.asym.{variant,
  alpha_pos, alpha_neg}`` (registered by ``backends.verl.adapter``); the baselines use verl's own
  settings: GRPO (and its entropy-bonus / Clip-higher variants) is verl's ``grpo``; Dr.GRPO is
  ``grpo`` with ``norm_adv_by_std_in_grpo=false``, ``loss_agg_mode=seq-mean-token-sum-norm`` and
  ``loss_scale_factor`` = the max response length;
- Cui et al.'s covariance losses are verl's own loss modes (``actor.policy_loss.loss_mode=clip_cov |
  kl_cov``) with their parameters written out, the same values the embedded engine runs
  (``tinyrlvr.policy_losses``); the default PPO-clip trials render no policy_loss key at all;
- the trainer is our registered subclass (``trainer.v1.trainer_mode=asym_sync``), which adds the
  paper's diagnostics; the validation rows get their own Avg@n through our dataset class;
- one verifier for every method: ``reward.custom_reward_function`` = ``verifier.compute_score``;
- metrics go to MLflow (run handed over by the orchestrator) and to verl's file logger, which
  the backend streams back to Tune;
- a single-node trial starts a private Ray (``+ray_kwargs.ray_init.address=local``); a multi-node
  trial joins the cluster as its own Ray Job in its own namespace (verl's actors are named).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from backends.verl.cpu.settings import cpu_overrides, render_embedded_task
from experiments.spec import TrialSpec

ENTRYPOINT = ("python", "-m", "backends.verl.entry")
TRAINER_MODE = "asym_sync"  # registered by backends.verl.trainer
LOGP_GAIN_EVERY_KEY = "asym_logp_gain_every"  # trainer.<key>: read by the trainer subclass
# The one name all our estimators take in verl's registry (``backends.verl.adapter`` registers it);
# the variant (a name of ``estimators.registry``) travels in the trial's settings.
VERL_ESTIMATOR_NAME = "asym_grpo"
CUSTOM_ESTIMATOR = VERL_ESTIMATOR_NAME
VERL_GRPO_ESTIMATORS = ("grpo", "dr-grpo")  # baselines run as verl's own `grpo`
TRAIN_FILE = "math_train.parquet"
TRAIN_SOURCE = "math_train"  # data_source of the MATH training rows (never a benchmark)
SAVE_EVERY = 50  # [NF] ours: a checkpoint every 50 steps (a 4B FSDP checkpoint is tens of GB)
TOTAL_EPOCHS_CAP = 1000  # training length is total_training_steps; the epoch cap must never bind
ROLLOUT_GPU_MEMORY = 0.6  # [NF] ours: vLLM's share of each GPU while colocated with FSDP


@dataclass(frozen=True)
class RenderPaths:
    """Where the trial reads its data and keeps its checkpoints (absolute paths on the GPU nodes)."""

    data_dir: str  # written by `asym data prepare`
    checkpoint_root: str  # one deterministic folder per trial below it


def checkpoint_dir(trial: TrialSpec, paths: RenderPaths) -> str:
    """Deterministic per trial key: a retried attempt finds the failed one's checkpoints."""
    return f"{paths.checkpoint_root.rstrip('/')}/{trial.study}/{trial.name}-{trial.key}"


def is_multi_node(trial: TrialSpec) -> bool:
    return int(trial.settings_dict().get("nnodes", 1)) > 1


def ray_namespace(trial: TrialSpec) -> str:
    """One namespace per trial: verl's named actors (vllm_server_i_j, ...) never collide."""
    return f"asym-{trial.key}"


def val_n(trial: TrialSpec) -> dict[str, int]:
    """Benchmark -> samples per problem (Avg@n); the preset stores it as sorted pairs."""
    raw = trial.settings_dict().get("val_n") or ()
    pairs = raw.items() if isinstance(raw, dict) else raw
    return {str(k): int(v) for k, v in pairs}


def _fmt(value: Any) -> str:
    """A Hydra override value: lowercase booleans, repr floats (2e-06 stays exact), null for None."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _check(trial: TrialSpec) -> dict[str, Any]:
    if trial.backend != "verl":
        raise ValueError(f"trial '{trial.name}' is planned for backend '{trial.backend}', not verl")
    s = trial.settings_dict()
    missing = [k for k in ("hf_path", "train_batch_size", "ppo_mini_batch_size", "max_prompt_length",
                           "max_response_length", "rollout_n", "lr") if k not in s]
    if missing:
        raise ValueError(f"trial '{trial.name}' lacks verl settings {', '.join(missing)}; plan it with --backend verl")
    if not val_n(trial):
        raise ValueError(f"trial '{trial.name}' has no val_n benchmarks; set val_n in the preset")
    return s


def estimator_overrides(trial: TrialSpec) -> list[str]:
    """The advantage estimator and the loss aggregation it comes with (spec sections 1, 5)."""
    if trial.estimator == "grpo":  # verl's GRPO: (r - mean) / (std + eps), unbiased std (verl-notes)
        return ["algorithm.adv_estimator=grpo", "algorithm.norm_adv_by_std_in_grpo=true"]
    if trial.estimator == "dr-grpo":  # Dr.GRPO as verl runs it (verl-notes, "Config keys")
        return ["algorithm.adv_estimator=grpo", "algorithm.norm_adv_by_std_in_grpo=false"]
    return [
        f"algorithm.adv_estimator={CUSTOM_ESTIMATOR}",
        f"+algorithm.asym.variant={trial.estimator}",
        f"+algorithm.asym.alpha_pos={_fmt(float(trial.alpha_pos))}",
        f"+algorithm.asym.alpha_neg={_fmt(float(trial.alpha_neg))}",
        *(f"+algorithm.asym.params.{k}={_fmt(float(v))}" for k, v in trial.estimator_params),
        *schedule_overrides(trial),
    ]


def schedule_overrides(trial: TrialSpec) -> list[str]:
    """The alpha schedule (estimators.schedules) and the run's length it needs; none when fixed."""
    if not trial.schedule:
        return []
    value = lambda v: _fmt(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else f"'{v}'"  # noqa: E731
    return [f"+algorithm.asym.total_steps={trial.steps}",
            *(f"+algorithm.asym.schedule.{k}={value(v)}" for k, v in trial.schedule)]


def policy_loss_overrides(trial: TrialSpec) -> list[str]:
    """verl's loss mode for Clip-Cov / KL-Cov (Cui et al. 2505.22617), every parameter explicit."""
    if trial.policy_loss == "vanilla":
        return []
    from tinyrlvr import policy_losses as pl  # deferred: torch

    key = "actor_rollout_ref.actor.policy_loss"
    out = [f"{key}.loss_mode={trial.policy_loss}"]
    if trial.policy_loss == "clip_cov":
        out += [f"{key}.clip_cov_ratio={_fmt(pl.CLIP_COV_RATIO)}", f"{key}.clip_cov_lb={_fmt(pl.CLIP_COV_LB)}",
                f"{key}.clip_cov_ub={_fmt(pl.CLIP_COV_UB)}"]
    else:  # kl_cov: coef 1 as verl's function default (its YAML default 0.1 would otherwise apply)
        out += [f"{key}.kl_cov_ratio={_fmt(pl.KL_COV_RATIO)}", f"{key}.ppo_kl_coef={_fmt(pl.KL_COV_COEF)}"]
    return out


def render_overrides(trial: TrialSpec, paths: RenderPaths) -> list[str]:
    """Every Hydra override of one trial, in a fixed order (the golden files pin it)."""
    s = _check(trial)
    prompt_len, response_len = int(s["max_prompt_length"]), int(s["max_response_length"])
    seq_len = prompt_len + response_len
    n_per_benchmark = val_n(trial)
    data = paths.data_dir.rstrip("/")
    val_files = ",".join(f"{data}/{name}.parquet" for name in sorted(n_per_benchmark))
    seed = int(trial.seed)

    out = estimator_overrides(trial)
    out += [
        "algorithm.use_kl_in_reward=false",  # no KL anywhere (spec section 5)
        # policy and optimizer
        f"actor_rollout_ref.model.path={s['hf_path']}",
        "actor_rollout_ref.model.enable_gradient_checkpointing=true",
        "actor_rollout_ref.model.use_remove_padding=true",
        f"actor_rollout_ref.actor.optim.lr={_fmt(float(s['lr']))}",  # AdamW 2e-6 [v2, v1*]
        f"actor_rollout_ref.actor.ppo_mini_batch_size={int(s['ppo_mini_batch_size'])}",  # prompts [v2]
        f"actor_rollout_ref.actor.ppo_epochs={int(s.get('ppo_epochs', 1))}",
        f"actor_rollout_ref.actor.use_kl_loss={_fmt(bool(s.get('use_kl_loss', False)))}",
        f"actor_rollout_ref.actor.entropy_coeff={_fmt(float(trial.entropy_coeff))}",
        f"actor_rollout_ref.actor.clip_ratio_low={_fmt(float(trial.clip_low))}",
        f"actor_rollout_ref.actor.clip_ratio_high={_fmt(float(trial.clip_high))}",
        f"actor_rollout_ref.actor.loss_agg_mode={trial.loss_agg}",  # token-mean: DAPO style [v2]
    ]
    if trial.loss_agg == "seq-mean-token-sum-norm":  # else the divisor is the padded batch length
        out.append(f"actor_rollout_ref.actor.loss_scale_factor={response_len}")
    out += policy_loss_overrides(trial)
    out += [
        # token budgets per GPU, verl's DAPO recipe: 2x (train) and 3x (log-prob) one full sequence
        "actor_rollout_ref.actor.use_dynamic_bsz=true",
        f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu={2 * seq_len}",
        f"actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu={3 * seq_len}",
        f"actor_rollout_ref.actor.data_loader_seed={seed}",
        # rollouts
        f"actor_rollout_ref.rollout.name={s.get('rollout_name') or 'vllm'}",
        f"actor_rollout_ref.rollout.n={int(s['rollout_n'])}",  # G = 8 [v1*]
        f"actor_rollout_ref.rollout.temperature={_fmt(float(s.get('rollout_temperature', 1.0)))}",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        f"actor_rollout_ref.rollout.gpu_memory_utilization={_fmt(ROLLOUT_GPU_MEMORY)}",
        f"actor_rollout_ref.rollout.seed={seed}",
        # evaluation: Avg@n per benchmark at temperature 0.4, top-p 1.0 [v2, v1*]
        f"actor_rollout_ref.rollout.val_kwargs.n={max(n_per_benchmark.values())}",
        f"actor_rollout_ref.rollout.val_kwargs.temperature={_fmt(float(s.get('eval_temperature', 0.4)))}",
        f"actor_rollout_ref.rollout.val_kwargs.top_p={_fmt(float(s.get('eval_top_p', 1.0)))}",
        "actor_rollout_ref.rollout.val_kwargs.do_sample=true",
        # data: MATH train (7,500) and the five benchmarks, from `asym data prepare`
        f"data.train_files=[{data}/{TRAIN_FILE}]",
        f"data.val_files=[{val_files}]",
        f"data.train_batch_size={int(s['train_batch_size'])}",  # prompts [v2]
        f"data.max_prompt_length={prompt_len}",
        f"data.max_response_length={response_len}",
        "data.filter_overlong_prompts=true",
        f"data.seed={seed}",
        f"+data.apply_chat_template_kwargs.enable_thinking={_fmt(bool(s.get('enable_thinking', False)))}",
        "data.custom_cls.path=pkg://backends.verl.trainer",
        "data.custom_cls.name=AsymRLDataset",
    ]
    out += [f"+data.asym_val_n.{name}={n}" for name, n in sorted(n_per_benchmark.items())]
    if s.get("attn_implementation"):  # else verl's default, flash_attention_2
        out.append(f"+actor_rollout_ref.model.override_config.attn_implementation={s['attn_implementation']}")
    out += [
        # one verifier for every method
        "reward.custom_reward_function.path=pkg://backends.verl.verifier",
        "reward.custom_reward_function.name=compute_score",
        # trainer: our registered subclass, tracking, evaluation cadence, checkpoints
        f"trainer.v1.trainer_mode={TRAINER_MODE}",
        f"+trainer.{LOGP_GAIN_EVERY_KEY}={int(s.get('logp_gain_every', 1))}",  # Fig 2 d,h
        "trainer.logger=[console,mlflow,file]",
        "trainer.project_name=asym",
        f"trainer.experiment_name={trial.name}",
        f"trainer.n_gpus_per_node={int(s.get('n_gpus_per_node', 4))}",
        f"trainer.nnodes={int(s.get('nnodes', 1))}",
        f"trainer.total_training_steps={int(trial.steps)}",
        f"trainer.total_epochs={TOTAL_EPOCHS_CAP}",
        f"trainer.test_freq={int(s.get('eval_every', 10))}",  # every 10 steps [v2]
        "trainer.val_before_train=true",  # step 0 = the starting model
        f"trainer.save_freq={int(s.get('save_every', SAVE_EVERY))}",
        "trainer.max_actor_ckpt_to_keep=1",
        "trainer.resume_mode=auto",
        f"trainer.default_local_dir={checkpoint_dir(trial, paths)}",
    ]
    if is_multi_node(trial):
        out.append(f"+ray_kwargs.ray_init.namespace={ray_namespace(trial)}")
    else:
        out.append("+ray_kwargs.ray_init.address=local")
    if uses_embedded_task(trial):  # the exported engine model and its task (cpu/settings.py)
        out = render_embedded_task(list(val_n(trial)), out)
        if is_cpu(trial):  # verl's CPU mode (our rollout is rollout_name=asym_cpu, rendered above)
            out = cpu_overrides(out, multi_node=is_multi_node(trial))
    return out


def uses_embedded_task(trial: TrialSpec) -> bool:
    return trial.settings_dict().get("task") == "addition"


def is_cpu(trial: TrialSpec) -> bool:
    return trial.settings_dict().get("device") == "cpu"


def default_paths() -> RenderPaths:
    """$ASYM_DATA_DIR and $ASYM_CHECKPOINT_DIR, else ./data/verl and ./checkpoints (absolute)."""

    data = os.environ.get("ASYM_DATA_DIR") or os.path.join(os.getcwd(), "data", "verl")
    ckpt = os.environ.get("ASYM_CHECKPOINT_DIR") or os.path.join(os.getcwd(), "checkpoints")
    return RenderPaths(os.path.abspath(data), os.path.abspath(ckpt))


def dry_run_fields(trial: TrialSpec, paths: RenderPaths | None = None) -> dict[str, list[str]]:
    """What `asym sweep ... --backend verl --dry-run --json` shows per trial."""
    return {"entrypoint": list(ENTRYPOINT), "overrides": render_overrides(trial, paths or default_paths())}
