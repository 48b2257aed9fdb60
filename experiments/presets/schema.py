"""Typed schemas of the model presets: a wrong key or type in a preset or user YAML is one clear error.

Every preset has three trial-level keys (they become ``TrialSpec`` fields, never ``settings``):
``steps``, ``clip`` (PPO's symmetric epsilon, the trial's ``clip_low``) and ``entropy_coeff`` (used
only by the entropy-bonus baselines). The rest of a preset becomes ``TrialSpec.settings``:
``VerlSettings`` for the verl backbones, the embedded engine's own fields for ``embedded-tiny``.
Tags as in ``shared/paper/spec.md``: [v2] paper text, [v1*] quoted v1 value, [NF] our default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

# Benchmarks and their Avg@k [v2, App G/H]: Avg@5 for MATH-500 and OlympiadBench, Avg@10 for the
# small competition sets.
BENCHMARKS = ("math500", "olympiadbench", "aime24", "aime25", "amc23")
DEFAULT_VAL_N = {"math500": 5, "olympiadbench": 5, "aime24": 10, "aime25": 10, "amc23": 10}

TRIAL_KEYS = ("steps", "clip", "entropy_coeff")
CPU_ROLLOUT_NAME = "asym_cpu"  # verl's rollout.name of the CPU mode (backends/verl/cpu)


@dataclass
class VerlPreset:
    """One verl backbone. Every key but the three trial-level ones lands in ``TrialSpec.settings``.

    ``val_n`` maps a benchmark (one of ``BENCHMARKS``) to its number of samples per problem (Avg@n);
    in ``TrialSpec.settings`` it is stored as sorted ``(benchmark, n)`` pairs so the spec stays
    hashable: read it with ``dict(trial.settings_dict()["val_n"])``.
    ``gpus_per_trial`` is what one trial reserves; it must equal ``n_gpus_per_node * nnodes``
    (left unset it is derived; set alone on one node, ``n_gpus_per_node`` follows it).
    """

    hf_path: str = MISSING  # Hugging Face id or local path of the base model
    train_batch_size: int = MISSING  # prompts per rollout batch ("global batch") [v2, App G]
    ppo_mini_batch_size: int = MISSING  # prompts per optimizer step ("mini-batch") [v2, App G]
    max_response_length: int = MISSING  # tokens [v2, App G]
    max_prompt_length: int = 1024  # [NF] ours: MATH prompts with the chat template fit in 1024
    rollout_n: int = 8  # rollouts per prompt G [v1*, two notes]
    rollout_temperature: float = 1.0  # training sampling temperature [NF] (verl's default)
    lr: float = 2e-6  # AdamW, same for all models [v2 AdamW; lr v1*, two notes]
    ppo_epochs: int = 1  # [NF] ours (spec section 9)
    eval_every: int = 10  # "Evaluation is performed every 10 training steps" [v2, App G]
    eval_temperature: float = 0.4  # main tables [v1*, two notes]
    eval_top_p: float = 1.0  # [v1*]
    val_n: Optional[Dict[str, int]] = None  # None: DEFAULT_VAL_N, Avg@5 / Avg@10 [v2]; a preset's own replaces it
    # None: this machine's CUDA GPUs, or the paper's 4 ("4x NVIDIA H100", one node [v2, App G]) when
    # it shows none (machine.py); a cluster's GPU nodes differ from its head: set it there
    n_gpus_per_node: Optional[int] = None
    nnodes: int = 1  # "a single node" [v2, App H]
    gpus_per_trial: Optional[int] = None  # None: n_gpus_per_node * nnodes
    enable_thinking: bool = False  # Qwen3-4B "non-thinking mode" [v2]; unused by Qwen2.5 templates
    # where and how verl runs; "cpu" is the CPU mode (backends/verl/cpu), whose checks
    # refuse GPU-only values (vLLM rollout, flash attention, KL with its pinned-memory reference model)
    device: str = "cuda"
    rollout_name: str = "vllm"  # verl's rollout.name; asym_cpu on the CPU
    attn_implementation: Optional[str] = None  # None: verl's default (flash_attention_2)
    use_kl_loss: bool = False  # no KL anywhere (spec section 5)
    task: str = "math"  # math: MATH + benchmarks (asym data prepare); addition: the embedded task
    # train/logp_gain_correct (Fig 2 d,h): one extra actor forward of the batch after the update every
    # this many steps; 0 = never [ours: the paper does not say how often it measured it]
    logp_gain_every: int = 1
    # verl's trainer.save_freq: a checkpoint (and resume point) every this many steps [NF] ours: a 4B
    # FSDP checkpoint is tens of GB; the CPU preset's runs are short, so tests checkpoint every step
    save_every: int = 50
    # trial-level
    steps: int = 300  # training steps [NF] ours (the paper gives none)
    clip: float = 0.2  # PPO epsilon [NF] ours = verl's default (spec section 5)
    entropy_coeff: float = 0.001  # entropy-bonus baselines only; tuned per model in the paper, value [NF]


def _omegaconf_type(value: Any) -> Any:
    """The schema type OmegaConf should enforce for a default value of the embedded engine."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return int
    if isinstance(value, float):
        return float
    if isinstance(value, str):
        return str
    if isinstance(value, (list, tuple)):
        inner = {_omegaconf_type(v) for v in value}
        return List[inner.pop()] if len(inner) == 1 else List[Any]
    if isinstance(value, dict):
        return Dict[str, Any]
    return Any


def embedded_schema(engine_defaults: dict[str, Any], trial_defaults: dict[str, Any]) -> type:
    """A dataclass schema for ``embedded-tiny``: the engine's fields typed by their defaults + trial keys."""
    fields = []
    for name, value in {**engine_defaults, **trial_defaults}.items():
        kind = _omegaconf_type(value)
        if isinstance(value, (list, tuple, dict)):
            fields.append((name, kind, field(default_factory=lambda v=value: type(v)(v) if not isinstance(v, tuple) else list(v))))
        else:
            fields.append((name, Optional[kind] if value is None else kind, field(default=value)))
    return dataclasses.make_dataclass("EmbeddedPreset", fields)
