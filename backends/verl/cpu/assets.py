"""The ``cpu-tiny`` model and task, made locally: nothing is downloaded.

Model: the embedded engine's base model (``tinyrlvr.base_model.get_base_model(cfg)``, trained and
cached by the engine on first use) exported to Hugging Face's GPT-2 with the same weights, so verl
and the embedded engine train the same policy. The architectures match term by term: pre-LayerNorm
blocks with learned positions, one fused q/k/v projection with heads laid out alike, exact GELU
(``activation_function="gelu"``), untied output head, eps 1e-5, no dropout. GPT-2's ``Conv1D``
stores weights as (in, out): every Linear weight is transposed. Positions: verl computes them from
the attention mask exactly as ``tinyrlvr.model.positions_from_mask`` does.

One departure needs care: the engine's head covers only the 13 ids the policy may emit (PAD and BOS
have no logit, i.e. -inf); GPT-2's head covers all 15. Their two rows are set to ``c / gamma``
(``gamma``, ``beta``: ``ln_f``'s scale and shift), so their logit is ``c * sum(beta / gamma)``
whatever the input (the normalised activations sum to zero), with ``c`` chosen to make it
``PAD_LOGIT`` = -1e4: softmax gives them exactly 0 in float32, and every log-prob and entropy over
the 13 real ids is the engine's. Training leaves those rows alone (zero gradient); their logit moves
only as far as ``ln_f`` moves, staying near -1e4 over short runs.

Tokenizer: one token per character of ``tinyrlvr.task.CHARS``; BOS ``^`` and PAD ``_`` are special
tokens, the end token ``$`` is not, so verl's reward loop (which decodes with
``skip_special_tokens=True``) sees it and the verifier stays exact. The chat template writes BOS
and the message: ``^12+39=``. EOS for generation is ``$`` (``generation_config.json``).

Task: the engine's tiered addition as verl parquet: ``addition_train`` (training split) and one
file per tier (``tier1``, ...: the engine's held-out evaluation set, ``problem_set``).

Cached under ``<cache_dir>/verl-cpu/<base model key>-v<EXPORT_FORMAT>``, written once under a file
lock and moved in place whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig

EXPORT_FORMAT = 2  # bump when the export or the data layout changes
PAD_LOGIT = -1.0e4
TRAIN_SOURCE = "addition_train"
TRAIN_ROWS = 4096  # more than any CPU run consumes (steps x prompts), drawn once
TRAIN_SEED = 20261202
# verl's FSDP engine picks AutoModelForCausalLM only for an architecture name containing
# "ForCausalLM" (verl/utils/model.py, get_hf_auto_model_class), else AutoModel: no LM head. The
# trial renders this name as verl's model.override_config (verl's view only; transformers and
# vLLM resolve GPT2LMHeadModel from the file).
VERL_ARCHITECTURE = "GPT2ForCausalLM"
CHAT_TEMPLATE = "{{ bos_token }}{% for message in messages %}{{ message['content'] }}{% endfor %}"


@dataclass(frozen=True)
class CpuAssets:
    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def train_file(self) -> Path:
        return self.data_dir / f"{TRAIN_SOURCE}.parquet"

    def val_file(self, source: str) -> Path:
        return self.data_dir / f"{source}.parquet"


def engine_config(**settings):
    """The embedded engine's config whose base model ``cpu-tiny`` exports (its smoke model: fits CI)."""

    return EngineConfig.create(**{"estimator": "grpo", **SMOKE_OVERRIDES, **settings})


def assets_for(cfg) -> CpuAssets:
    """Where the export for ``cfg``'s base model lives (pure: nothing is made)."""
    return CpuAssets(Path(cfg.cache_dir).expanduser() / "verl-cpu" / f"{cfg.base_model_key()}-v{EXPORT_FORMAT}")


def tier_sources(cfg) -> list[str]:
    from tinyrlvr.task import tier_name  # deferred: torch

    return [tier_name(t) for t in cfg.tiers]


# --- model ----------------------------------------------------------------------------------


def gpt2_config(shape, vocab_size: int):
    from transformers import GPT2Config  # deferred: transformers

    from tinyrlvr.task import BOS, EOS, PAD  # deferred: torch

    return GPT2Config(vocab_size=vocab_size, n_positions=shape.max_len, n_embd=shape.d_model, n_layer=shape.n_layers,
                      n_head=shape.n_heads, n_inner=shape.mlp_ratio * shape.d_model, activation_function="gelu",
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                      scale_attn_weights=True, tie_word_embeddings=False, use_cache=True,
                      bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, architectures=["GPT2LMHeadModel"],
                      num_key_value_heads=shape.n_heads)  # read by verl's monkey_patch.apply_monkey_patch


def blocked_rows(gamma, beta, logit: float = PAD_LOGIT):
    """Head row ``w`` with ``w . ln_f(x) = logit`` for every x: ``w = c / gamma``, ``c = logit / sum(beta/gamma)``."""
    if bool((gamma.abs() < 1e-6).any()):
        raise ValueError("ln_f has a zero scale; the PAD/BOS logits cannot be pinned")
    ratio = float((beta / gamma).sum())
    if abs(ratio) < 1e-3:
        raise ValueError("ln_f's sum(beta/gamma) is ~0; the PAD/BOS logits cannot be pinned")
    return (logit / ratio) / gamma


def gpt2_state_dict(policy) -> dict:
    """The engine policy's weights under GPT-2's names and layouts (see the module docstring)."""
    import torch  # deferred: torch

    from tinyrlvr.task import OUTPUT_VOCAB, VOCAB_SIZE  # deferred: torch

    sd = {k: v.detach().clone().float() for k, v in policy.state_dict().items()}
    out = {"transformer.wte.weight": sd["tok.weight"], "transformer.wpe.weight": sd["pos.weight"],
           "transformer.ln_f.weight": sd["ln_f.weight"], "transformer.ln_f.bias": sd["ln_f.bias"]}
    for i in range(policy.shape.n_layers):
        src, dst = f"blocks.{i}.", f"transformer.h.{i}."
        for a, b in (("ln1", "ln_1"), ("ln2", "ln_2")):
            out[f"{dst}{b}.weight"], out[f"{dst}{b}.bias"] = sd[f"{src}{a}.weight"], sd[f"{src}{a}.bias"]
        for a, b in (("qkv", "attn.c_attn"), ("proj", "attn.c_proj"), ("mlp.0", "mlp.c_fc"), ("mlp.2", "mlp.c_proj")):
            out[f"{dst}{b}.weight"] = sd[f"{src}{a}.weight"].t().contiguous()  # Conv1D: (in, out)
            out[f"{dst}{b}.bias"] = sd[f"{src}{a}.bias"]
    head = torch.empty(VOCAB_SIZE, policy.shape.d_model)
    head[:OUTPUT_VOCAB] = sd["head.weight"]
    head[OUTPUT_VOCAB:] = blocked_rows(sd["ln_f.weight"], sd["ln_f.bias"])
    out["lm_head.weight"] = head
    return out


def to_gpt2(policy):
    """A ``GPT2LMHeadModel`` computing the engine policy's logits (on the 13 real ids)."""
    from transformers import GPT2LMHeadModel  # deferred: transformers

    from tinyrlvr.task import VOCAB_SIZE  # deferred: torch

    model = GPT2LMHeadModel(gpt2_config(policy.shape, VOCAB_SIZE))
    missing, unexpected = model.load_state_dict(gpt2_state_dict(policy), strict=False)
    missing = [k for k in missing if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")]
    if missing or unexpected:
        raise RuntimeError(f"GPT-2 export mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()


def make_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # deferred: tokenizers
    from transformers import PreTrainedTokenizerFast  # deferred: transformers

    from tinyrlvr.task import BOS, CHARS, PAD  # deferred: torch

    core = Tokenizer(models.WordLevel({c: i for i, c in enumerate(CHARS)}, unk_token=CHARS[PAD]))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=CHARS[BOS], pad_token=CHARS[PAD],
                                   unk_token=CHARS[PAD], padding_side="left", chat_template=CHAT_TEMPLATE,
                                   model_max_length=64)


def export_model(cfg, out: Path) -> Path:
    from transformers import GenerationConfig  # deferred: transformers

    from tinyrlvr.base_model import get_base_model, load_policy  # deferred: numpy, torch
    from tinyrlvr.task import BOS, EOS, PAD  # deferred: torch

    base = get_base_model(cfg)
    model = to_gpt2(load_policy(base))
    model.save_pretrained(out)  # architectures: GPT2LMHeadModel (what vLLM and transformers resolve)
    make_tokenizer().save_pretrained(out)
    GenerationConfig(eos_token_id=EOS, pad_token_id=PAD, bos_token_id=BOS, do_sample=True).save_pretrained(out)
    (out / "asym_export.json").write_text(json.dumps({"base_model": str(base), "key": cfg.base_model_key(),
                                                      "format": EXPORT_FORMAT}, indent=2) + "\n")
    return out


# --- task -----------------------------------------------------------------------------------


def task_rows(problems, source: str, split: str) -> list[dict]:
    from tinyrlvr.task import answer_text  # deferred: torch

    rows = []
    for index, (a, b, tier) in enumerate(zip(problems.a.tolist(), problems.b.tolist(), problems.tier.tolist())):
        rows.append({"data_source": source, "prompt": [{"role": "user", "content": f"{a}+{b}="}],
                     "ability": "arithmetic",
                     "reward_model": {"style": "rule", "ground_truth": answer_text(a, b)},
                     "extra_info": {"split": split, "index": index, "tier": tier, "a": a, "b": b}})
    return rows


def write_task(cfg, out: Path) -> dict[str, int]:
    import pandas as pd  # deferred: pandas
    import torch  # deferred: torch

    from tinyrlvr import seeding  # deferred: numpy, torch
    from tinyrlvr.evaluate import problem_set  # deferred: numpy, torch
    from tinyrlvr.task import sample_problems, tier_name  # deferred: torch

    gen = seeding.generator(TRAIN_SEED, 0, "prompts")  # its own seed: not the engine's stream
    tiers = torch.tensor(cfg.tiers, dtype=torch.long)[torch.randint(len(cfg.tiers), (TRAIN_ROWS,), generator=gen)]
    tables = {TRAIN_SOURCE: task_rows(sample_problems(tiers, gen, heldout=False), TRAIN_SOURCE, "train")}
    held_out = problem_set(cfg.tiers, cfg.eval_prompts_per_tier, heldout=True)  # the engine's eval set
    for t in cfg.tiers:
        rows = held_out.tier == t
        subset = type(held_out)(held_out.a[rows], held_out.b[rows], held_out.tier[rows])
        tables[tier_name(t)] = task_rows(subset, tier_name(t), "test")
    for source, rows in tables.items():
        pd.DataFrame(rows).to_parquet(out / f"{source}.parquet", index=False)
    return {source: len(rows) for source, rows in tables.items()}


def ensure_assets(cfg) -> CpuAssets:
    """Make (once, under a lock) and return the export of ``cfg``'s base model and its task files."""

    assets = assets_for(cfg)
    if (assets.root / "done").exists():
        return assets
    assets.root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(assets.root) + ".lock"):
        if (assets.root / "done").exists():
            return assets
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=assets.root.parent))
        try:
            (staging / "model").mkdir()
            (staging / "data").mkdir()
            export_model(cfg, staging / "model")
            rows = write_task(cfg, staging / "data")
            (staging / "done").write_text(json.dumps(rows) + "\n")
            if assets.root.exists():
                shutil.rmtree(assets.root)
            os.replace(staging, assets.root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return assets
