"""The base model: a short supervised warm-up on imperfect demonstrations, cached on disk.

Why imperfect: RLVR needs a base that is partly right (mixed group accuracies, as the paper's base
models are). Demonstrations are the task's correct answers with ``warmup_corrupt_frac`` of them
carrying one wrong digit; tiers are drawn with weights ``warmup_tier_weights`` (4:3:2:1 by default:
the probe found uniform weights make every tier easy and 8:4:2:1 leaves the hardest at 0).
Per-tier accuracy rises in sudden phase transitions, so checkpoints are evaluated every
``warmup_eval_every`` steps (training-split prompts, temperature 1) and the warm-up stops at the first
one whose hardest tier reaches ``warmup_target_hard`` while the easiest is at least
``warmup_target_easy``; if none does, the checkpoint with the best hardest-tier accuracy among those
meeting the easy target (else the last) is the base model.

Deterministic for a config: fixed seeds, fixed thread count (``warmup_threads``), CPU. Cached under
``cache_dir`` as ``base-<key>.pt`` with ``key = cfg.base_model_key()`` (model size, task and warm-up
settings), written atomically under a file lock so concurrent trial processes train it only once.
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
from tinyrlvr.evaluate import accuracy_by_tier, problem_set
from tinyrlvr.model import ModelShape, Policy
from tinyrlvr.task import OUTPUT_VOCAB, PAD, encode_prompts, sample_problems, target_responses

log = logging.getLogger(__name__)
WARMUP_VALIDATION_SEED = 7  # validation prompts come from the training split, not the eval split


def base_model_path(cfg) -> Path:
    """Where the base model for ``cfg`` is cached (it may not exist yet)."""
    return Path(cfg.cache_dir).expanduser() / f"base-{cfg.base_model_key()}.pt"


def get_base_model(cfg) -> Path:
    """Path of the cached base model for ``cfg``; trains it first if no process has yet."""
    path = base_model_path(cfg)
    cache, key = path.parent, cfg.base_model_key()
    if path.exists():
        return path
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the base-model cache {cache}: {exc.strerror}; set cache_dir or ASYM_CACHE_DIR") from None
    with FileLock(str(cache / f"base-{key}.lock")):
        if path.exists():  # another process made it while we waited
            return path
        log.info("training the base model %s (cached for later runs)", path.name)
        state, report = warm_up(cfg)
        atomic_save({"shape": asdict(ModelShape.from_config(cfg)), "state_dict": state, "report": report}, path)
        path.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return path


def load_policy(path: Path, device: str = "cpu") -> Policy:
    blob = torch.load(path, map_location=device, weights_only=True)
    policy = Policy(ModelShape(**blob["shape"])).to(device)
    policy.load_state_dict(blob["state_dict"])
    return policy


def base_model_report(path: Path) -> dict:
    """What the warm-up recorded: chosen step, per-tier accuracy at each evaluated checkpoint."""
    return torch.load(path, map_location="cpu", weights_only=True)["report"]


def warm_up(cfg) -> tuple[dict[str, torch.Tensor], dict]:
    """Train from scratch on corrupted demonstrations; return the chosen state dict and a report."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.warmup_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeding.stream_seed(cfg.warmup_seed, 0, "init"))
            policy = Policy(ModelShape.from_config(cfg))
        return _train(policy, cfg)
    finally:
        torch.set_num_threads(threads)


def _train(policy: Policy, cfg) -> tuple[dict[str, torch.Tensor], dict]:
    start = time.perf_counter()
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.warmup_lr, weight_decay=0.01)
    data_gen = seeding.generator(cfg.warmup_seed, 0, "warmup-data")
    weights = torch.tensor(cfg.warmup_tier_weights, dtype=torch.float64)
    tiers = torch.tensor(cfg.tiers, dtype=torch.long)
    validation = problem_set(cfg.tiers, cfg.warmup_eval_prompts, heldout=False, seed=WARMUP_VALIDATION_SEED)
    p, r = cfg.max_prompt_len, cfg.max_new_tokens
    history, best = [], None
    for step in range(1, cfg.warmup_max_steps + 1):
        tier_of_row = tiers[torch.multinomial(weights, cfg.warmup_batch, replacement=True, generator=data_gen)]
        problems = sample_problems(tier_of_row, data_gen, heldout=False)
        prompts, prompt_valid = encode_prompts(problems, p)
        answers = _corrupt(target_responses(problems, r), cfg.warmup_corrupt_frac, data_gen)
        opt.zero_grad(set_to_none=True)
        loss = demonstration_loss_backward(policy, prompts, prompt_valid, answers, problems.tier)
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        if step % cfg.warmup_eval_every and step != cfg.warmup_max_steps:
            continue
        acc = accuracy_by_tier(policy, validation, p, r, 4, 1.0, seeding.generator(cfg.warmup_seed, step, "warmup-eval"))
        easy, hard = acc[min(cfg.tiers)], acc[max(cfg.tiers)]
        history.append({"step": step, "loss": float(loss.detach()), "accuracy": {str(t): a for t, a in acc.items()}})
        log.info("warm-up step %d: loss %.3f, accuracy %s", step, history[-1]["loss"], history[-1]["accuracy"])
        if easy >= cfg.warmup_target_easy and (best is None or hard > best[1]):
            best = (step, hard, {k: v.detach().clone() for k, v in policy.state_dict().items()})
        if easy >= cfg.warmup_target_easy and hard >= cfg.warmup_target_hard:
            break
    chosen_step, _, state = best if best is not None else (step, None, policy.state_dict())
    chosen = next(h for h in history if h["step"] == chosen_step)
    report = {"chosen_step": chosen_step, "accuracy": chosen["accuracy"], "seconds": time.perf_counter() - start,
              "key": cfg.base_model_key(), "history": history}
    return {k: v.detach().clone() for k, v in state.items()}, report


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


def _corrupt(answers: torch.Tensor, frac: float, generator: torch.Generator) -> torch.Tensor:
    """Replace one answer digit by a different digit in a ``frac`` share of the rows."""
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
