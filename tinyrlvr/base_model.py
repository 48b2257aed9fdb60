"""The base model: a short supervised warm-up on imperfect demonstrations, shipped and cached.

Why imperfect: RLVR needs a base that is partly right (mixed group accuracies, as the paper's base
models are). Demonstrations are the task's correct answers; a tier-t demonstration carries one wrong
digit with probability ``warmup_corrupt_frac[t]`` and tiers are drawn with ``warmup_tier_weights``.
The warm-up runs ``warmup_steps`` steps and keeps the last checkpoint: a model that has learnt the
demonstrations solves a tier-t prompt with probability about 1 - frac, so difficulty is set by the
corruption rates, not by when a phase transition happens to occur (which hinges on float rounding;
the earlier procedure picked a checkpoint at such a transition and gave each machine its own testbed).
Checkpoints are still evaluated every ``warmup_eval_every`` steps for the report.

Where a base model comes from, first hit wins:
1. the package (``tinyrlvr/base_models/base-<key>.pt``): the presets' base models are shipped, so
   every machine trains on the same weights and a first run does not wait for a warm-up;
2. the cache (``cache_dir/base-<key>.pt``);
3. a warm-up now, written to the cache atomically under a file lock (concurrent trial processes train
   it once). ``asym base-model build`` reruns the warm-up for a preset and says how it was made.

``key = cfg.base_model_key()`` hashes model size, task and warm-up settings; ``content_hash(path)``
hashes the weights themselves (a trial's identity includes it).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from filelock import FileLock

from tinyrlvr import seeding
from tinyrlvr.base_model_files import (  # noqa: F401  (re-exported)
    SHIPPED_DIR,
    base_model_path,
    content_hash,
    shipped_base_model_path,
)
from tinyrlvr.difficulty import drop_carries
from tinyrlvr.evaluate import accuracy_by_tier, problem_set
from tinyrlvr.model import ModelShape, Policy
from tinyrlvr.task import OUTPUT_VOCAB, PAD, encode_prompts, sample_problems, target_responses

log = logging.getLogger(__name__)
WARMUP_VALIDATION_SEED = 7  # validation prompts come from the training split, not the eval split


def base_model_ready(cfg) -> bool:
    """True when no warm-up is needed to start a run of ``cfg``."""
    return base_model_path(cfg).exists()


def get_base_model(cfg) -> Path:
    """Path of the base model for ``cfg``: shipped, cached, or trained now (once across processes)."""
    path = base_model_path(cfg)
    if path.exists():
        return path
    cache, key = path.parent, cfg.base_model_key()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the base-model cache {cache}: {exc.strerror}; set cache_dir or ASYM_CACHE_DIR") from None
    with FileLock(str(cache / f"base-{key}.lock")):
        if path.exists():  # another process made it while we waited
            return path
        log.info("training the base model %s (cached for later runs)", path.name)
        build_base_model(cfg, path)
    return path


def build_base_model(cfg, path: Path) -> dict:
    """Run the warm-up for ``cfg`` and write the base model to ``path`` (+ a JSON report beside it)."""
    state, report = warm_up(cfg)
    atomic_save({"shape": asdict(ModelShape.from_config(cfg)), "state_dict": state, "report": report}, path)
    report = {**report, "content_hash": content_hash(path)}
    path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def load_policy(path: Path, device: str = "cpu") -> Policy:
    blob = torch.load(path, map_location=device, weights_only=True)
    policy = Policy(ModelShape(**blob["shape"])).to(device)
    policy.load_state_dict(blob["state_dict"])
    return policy


def base_model_report(path: Path) -> dict:
    """What the warm-up recorded: chosen step, per-tier accuracy at each evaluated checkpoint."""
    return torch.load(path, map_location="cpu", weights_only=True)["report"]


def warm_up(cfg) -> tuple[dict[str, torch.Tensor], dict]:
    """Train on corrupted demonstrations; return the final state dict and a report.

    From scratch for ``warmup_steps``; with ``warmup_relearn_steps`` > 0, from the first phase's own
    base model (found or made like any other) for that many steps at ``warmup_relearn_corrupt_frac``.
    With ``warmup_errors = "carry"`` and a second phase, the first phase is the digit-error warm-up
    (``warmup_corrupt_frac``: addition learnt) and the second teaches the systematic carry errors.
    """
    errors = cfg.warmup_errors
    if cfg.warmup_relearn_steps:
        first = cfg.replace(warmup_relearn_steps=0, warmup_errors="digit")
        policy = load_policy(get_base_model(first))
        phase = {"steps": cfg.warmup_relearn_steps, "corrupt_frac": cfg.warmup_relearn_corrupt_frac,
                 "stream": "warmup-relearn", "from": first.base_model_key(), "errors": errors}
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeding.stream_seed(cfg.warmup_seed, 0, "init"))
            policy = Policy(ModelShape.from_config(cfg))
        phase = {"steps": cfg.warmup_steps, "corrupt_frac": cfg.warmup_corrupt_frac, "stream": "warmup-data",
                 "errors": errors}
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.warmup_threads)
    try:
        return _train(policy, cfg, phase)
    finally:
        torch.set_num_threads(threads)


def _train(policy: Policy, cfg, phase: dict) -> tuple[dict[str, torch.Tensor], dict]:
    start = time.perf_counter()
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.warmup_lr, weight_decay=0.01)
    data_gen = seeding.generator(cfg.warmup_seed, 0, phase["stream"])
    weights = torch.tensor(cfg.warmup_tier_weights, dtype=torch.float64)
    tiers = torch.tensor(cfg.tiers, dtype=torch.long)
    corrupt_frac = torch.tensor(phase["corrupt_frac"], dtype=torch.float64)
    carry_drop = torch.tensor(cfg.warmup_carry_drop, dtype=torch.float64)
    validation = problem_set(cfg.tiers, cfg.warmup_eval_prompts, heldout=False, seed=WARMUP_VALIDATION_SEED)
    p, r = cfg.max_prompt_len, cfg.max_new_tokens
    history = []
    last = phase["steps"]
    for step in range(1, last + 1):
        tier_index = torch.multinomial(weights, cfg.warmup_batch, replacement=True, generator=data_gen)
        problems = sample_problems(tiers[tier_index], data_gen, heldout=False)
        prompts, prompt_valid = encode_prompts(problems, p)
        if phase["errors"] == "carry":  # systematic: forgotten carries (tinyrlvr.difficulty)
            answers = drop_carries(target_responses(problems, r), problems, carry_drop, data_gen)
        else:
            answers = _corrupt(target_responses(problems, r), corrupt_frac[tier_index], data_gen)
        opt.zero_grad(set_to_none=True)
        loss = demonstration_loss_backward(policy, prompts, prompt_valid, answers, problems.tier)
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        if step % cfg.warmup_eval_every and step != last:
            continue
        acc = accuracy_by_tier(policy, validation, p, r, 4, 1.0, seeding.generator(cfg.warmup_seed, step, "warmup-eval"))
        history.append({"step": step, "loss": float(loss.detach()), "accuracy": {str(t): a for t, a in acc.items()}})
        log.info("warm-up step %d: loss %.3f, accuracy %s", step, history[-1]["loss"], history[-1]["accuracy"])
    report = {"steps": cfg.warmup_steps, "relearn_steps": cfg.warmup_relearn_steps, "from": phase.get("from"),
              "accuracy": history[-1]["accuracy"], "seconds": time.perf_counter() - start,
              "key": cfg.base_model_key(), "torch": str(torch.__version__), "history": history}
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}, report


def demonstration_loss_backward(policy: Policy, prompts: torch.Tensor, prompt_valid: torch.Tensor,
                                answers: torch.Tensor, tier_of_row: torch.Tensor) -> torch.Tensor:
    """Token-mean cross-entropy on the answers, backpropagated; returns the loss (detached).

    The same loss as one forward over the padded batch, computed tier by tier on columns trimmed to
    that tier's length (a tier-t prompt is its last 2t+3 columns, its answer at most t+2 tokens):
    left padding is masked anyway, so the logits are the same and ~40% fewer tokens are computed.
    """
    p = prompts.shape[1]
    answer_mask = answers != PAD
    n_tokens = answer_mask.sum().clamp_min(1)
    total = torch.zeros(())
    for tier in torch.unique(tier_of_row).tolist():
        rows = tier_of_row == tier
        pl, al = 2 * tier + 3, min(tier + 2, answers.shape[1])
        ans, mask = answers[rows, :al], answer_mask[rows, :al]
        tokens = torch.cat([prompts[rows, p - pl:], ans], 1)
        valid = torch.cat([prompt_valid[rows, p - pl:], mask], 1)
        logits = policy(tokens, valid, logits_from=pl - 1)[:, :-1]  # (rows, al, V)
        loss = torch.nn.functional.cross_entropy(logits[mask], ans[mask].clamp(max=OUTPUT_VOCAB - 1),
                                                 reduction="sum") / n_tokens
        loss.backward()
        total = total + loss.detach()
    return total


def _corrupt(answers: torch.Tensor, frac: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Replace one answer digit by a different digit in row i with probability ``frac[i]`` (N,)."""
    n, _ = answers.shape
    is_digit = answers < 10
    n_digits = is_digit.sum(-1)
    rows = torch.rand(n, generator=generator) < frac
    col = (torch.rand(n, generator=generator) * n_digits).long()  # uniform digit position
    shift = torch.randint(1, 10, (n,), generator=generator)
    out = answers.clone()
    old = out[torch.arange(n), col]
    out[torch.arange(n), col] = torch.where(rows, (old + shift) % 10, old)
    return out


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temp file beside ``path``, then rename: the file is complete or absent."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
