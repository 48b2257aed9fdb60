"""The Proposition 1 probe: fork the policy, apply exactly one update per method, measure the entropy change.

Along one reference trajectory (``cfg.estimator``, trained with the engine's own ``rl_step``), at
each chosen step s (0 = the base model) the probe takes the policy, its AdamW state and the batch
that step s + 1 samples, and for every method x control x optimizer applies one optimizer step to a
copy, from that same state and on that same batch (so every method sees the same rollouts):

- the loss is the engine's (``ppo_clip_loss`` at rho = 1, the step's first mini-batch; no entropy
  bonus), on the whole batch in one step: "one update" is one optimizer step, whereas the presets
  split a batch into ``mini_batches`` steps;
- optimizers: ``sgd`` (plain SGD, no clipping: Proposition 1's premise), ``sgd-clip`` (the same with
  the preset's grad-norm clip), ``adamw`` (the trajectory's AdamW, its moments carried, with the clip);
  the gradient of a (method, control) is computed once and given to all three;
- controls: ``none`` and ``center_groups`` (A <- A - mean_g(A) for every method, ``estimators.prop1``).

Measured: the token-mean entropy (eq 7, at the rollout temperature) after minus before, (a) on the
batch's own response tokens, teacher-forced, and (b) on a fixed probe set of held-out prompts with
their correct answers (``evaluate.entropy_probe_set``), the same for every method and seed. Each
method's change is reported as a gap to REINFORCE's under the same optimizer and control, the
quantity Proposition 1 predicts (``estimators.prop1``, per unit eta; times the optimizer's lr here).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from estimators import compute_advantages, compute_token_advantages, diagnostics, prop1
from estimators.registry import OPTIONAL_INPUTS, get_estimator
from tinyrlvr.base_model import get_base_model, load_policy
from tinyrlvr.config import EngineConfig
from tinyrlvr.evaluate import entropy_probe_set, probe_entropy
from tinyrlvr.loss import ppo_clip_loss
from tinyrlvr.model import response_logprobs
from tinyrlvr.rollout import RolloutBatch, collect
from tinyrlvr.trainer import rl_step

OPTIMIZERS = ("sgd", "sgd-clip", "adamw")
CONTROLS = ("none", "center_groups")
REFERENCE = "reinforce"  # Proposition 1's reference: every gap is dH_m - dH_REINFORCE
PROBE_INPUTS = frozenset({"seq_logprob"})  # what the probe hands an estimator (plus token entropy for shaping)


@dataclass(frozen=True)
class ProbeMethod:
    label: str
    estimator: str
    alpha_pos: float
    alpha_neg: float
    alpha_family: bool
    token_shaped: bool


def resolve_methods(specs: Sequence[tuple[str, str, float | None, float | None]]) -> list[ProbeMethod]:
    """(label, estimator, alpha+, alpha-) -> methods, REINFORCE first; one-line ValueError on a bad one."""
    methods = []
    for label, name, a_pos, a_neg in specs:
        est = get_estimator(name)
        lacking = sorted(set(est.inputs) - PROBE_INPUTS) + sorted(set(est.inputs) - set(OPTIONAL_INPUTS))
        if lacking:
            raise ValueError(f"estimator '{name}' needs {', '.join(sorted(set(lacking)))}, which the probe does not have "
                             f"(it offers {', '.join(sorted(PROBE_INPUTS))} and the token entropy)")
        pos, neg = est.resolve_alphas(a_pos, a_neg)
        methods.append(ProbeMethod(label, name, pos, neg, est.alpha_family, est.needs_token_entropy))
    if not any(m.estimator == REFERENCE and m.alpha_pos == 0 and m.alpha_neg == 0 for m in methods):
        methods.insert(0, ProbeMethod("REINFORCE", REFERENCE, 0.0, 0.0, True, False))
    return methods


def check_choices(optimizers: Sequence[str], controls: Sequence[str]) -> None:
    for name in optimizers:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{name}'; known: {', '.join(OPTIMIZERS)}")
    for name in controls:
        if name not in CONTROLS:
            raise ValueError(f"unknown control '{name}'; known: {', '.join(CONTROLS)}")


def one_step(policy: torch.nn.Module, grads: Sequence[torch.Tensor], optimizer: str, lr: float, grad_clip: float,
             weight_decay: float = 0.0, adam_state: dict | None = None) -> torch.nn.Module:
    """A copy of ``policy`` after one optimizer step with the given gradients (the policy is untouched).

    ``sgd``: p <- p - lr g. ``sgd-clip``: g clipped to norm ``grad_clip`` first. ``adamw``: clipped,
    then AdamW(lr, weight_decay) from ``adam_state`` (a ``state_dict``; None: fresh moments).
    """
    forked = copy.deepcopy(policy)
    params = list(forked.parameters())
    for p, g in zip(params, grads):
        p.grad = g.clone()
    if optimizer != "sgd":
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        if adam_state is not None:
            opt.load_state_dict(copy.deepcopy(adam_state))
            for group in opt.param_groups:
                group["lr"] = lr
    else:
        opt = torch.optim.SGD(params, lr=lr)
    opt.step()
    return forked


def batch_entropy(policy, batch: RolloutBatch, temperature: float) -> float:
    """Token-mean entropy over the batch's response tokens, teacher-forced (eq 7)."""
    with torch.no_grad():
        _, entropy = response_logprobs(policy, batch.prompts, batch.prompt_valid, batch.responses, batch.response_mask,
                                       temperature, with_entropy=True)
    return diagnostics.masked_mean(entropy, batch.response_mask)


def _gradient(policy, batch: RolloutBatch, token_adv: torch.Tensor, cfg: EngineConfig) -> list[torch.Tensor]:
    policy.zero_grad(set_to_none=True)
    logp, _ = response_logprobs(policy, batch.prompts, batch.prompt_valid, batch.responses, batch.response_mask,
                                cfg.temperature)
    loss, _ = ppo_clip_loss(logp, batch.old_logp, token_adv, batch.response_mask, cfg.clip_low, cfg.clip_high,
                            cfg.loss_agg, cfg.max_new_tokens)
    loss.backward()
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in policy.parameters()]
    policy.zero_grad(set_to_none=True)
    return grads


def _advantages(method: ProbeMethod, batch: RolloutBatch, seq_logp: torch.Tensor, cfg: EngineConfig,
                control: str) -> torch.Tensor:
    """Token advantages (N, T) of ``method`` on the batch under ``control``, as the trainer makes them."""

    adv = compute_advantages(method.estimator, batch.rewards, batch.group_ids, method.alpha_pos, method.alpha_neg,
                             seq_logprob=seq_logp)
    if control == "center_groups":
        adv = prop1.center_groups(adv, batch.group_ids)
    return compute_token_advantages(method.estimator, batch.rewards, batch.group_ids, batch.response_mask,
                                    method.alpha_pos, method.alpha_neg, token_entropy=batch.entropy,
                                    rollout_advantages=adv)


def probe_batch(policy, adam_state: dict | None, batch: RolloutBatch, cfg: EngineConfig, methods: Sequence[ProbeMethod],
                optimizers: Sequence[str], controls: Sequence[str], sgd_lr: float, probe_set,
                on_update: Callable[[], None] = lambda: None) -> list[dict]:
    """Every (method, control, optimizer) row at one state: raw entropy changes and the predictions."""
    seq_logp = diagnostics.sequence_mean_logprob(batch.old_logp, batch.response_mask)  # c_i (App E)
    kappa = diagnostics.kappa(batch.rewards, batch.group_ids, seq_logp)
    none_solved, all_solved = diagnostics.solve_fractions(batch.rewards, batch.group_ids)
    h_batch, h_probe = batch_entropy(policy, batch, cfg.temperature), probe_entropy(policy, probe_set, cfg.temperature)
    m = batch.response_mask.to(torch.float64)
    rows = []
    for control in controls:
        rollout_adv = {}
        for method in methods:
            token_adv = _advantages(method, batch, seq_logp, cfg, control)
            # the rollout's mean token advantage: exact for unshaped estimators (every token carries it)
            rollout_adv[method.label] = (token_adv.to(torch.float64) * m).sum(-1) / m.sum(-1).clamp_min(1)
            grads = _gradient(policy, batch, token_adv, cfg)
            grad_norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
            for name in optimizers:
                lr = sgd_lr if name.startswith("sgd") else cfg.lr
                forked = one_step(policy, grads, name, lr, cfg.grad_clip, cfg.weight_decay,
                                  adam_state if name == "adamw" else None)
                rows.append({"method": method.label, "estimator": method.estimator, "alpha_pos": method.alpha_pos,
                             "alpha_neg": method.alpha_neg, "optimizer": name, "control": control, "eta": lr,
                             "grad_norm": grad_norm, "kappa": kappa, "all_solved_frac": all_solved,
                             "none_solved_frac": none_solved, "prediction_exact": not method.token_shaped,
                             "dh_batch": batch_entropy(forked, batch, cfg.temperature) - h_batch,
                             "dh_probe": probe_entropy(forked, probe_set, cfg.temperature) - h_probe})
                on_update()
        reference = rollout_adv[next(mm.label for mm in methods if mm.estimator == REFERENCE)]
        by_label = {mm.label: mm for mm in methods}
        for row in rows:
            if row["control"] != control:
                continue
            method = by_label[row["method"]]
            gap = prop1.covariance_gap(batch.rewards, batch.group_ids, seq_logp, rollout_adv[method.label], reference)
            linear = prop1.linear_alpha_gap(kappa, method.alpha_pos, method.alpha_neg) if method.alpha_family else math.nan
            row.update(predicted_gap_per_eta=gap, linear_gap_per_eta=linear, predicted_dh=row["eta"] * gap,
                       predicted_dh_linear=row["eta"] * linear)
    ref_label = next(mm.label for mm in methods if mm.estimator == REFERENCE)
    ref = {(r["optimizer"], r["control"]): r for r in rows if r["method"] == ref_label}
    for row in rows:
        base = ref[(row["optimizer"], row["control"])]
        row["measured_dh_batch"] = row["dh_batch"] - base["dh_batch"]
        row["measured_dh_probe"] = row["dh_probe"] - base["dh_probe"]
    return rows


def run_probe(cfg: EngineConfig, at: Sequence[int], methods: Sequence[ProbeMethod], optimizers: Sequence[str],
              controls: Sequence[str], sgd_lr: float, on_update: Callable[[], None] = lambda: None,
              on_step: Callable[[int], None] = lambda step: None) -> list[dict]:
    """Train ``cfg.estimator`` to max(at) and probe at every step in ``at``; rows with ``seed`` and ``step``."""
    if not at or min(at) < 0 or max(at) >= cfg.steps:
        raise ValueError(f"--at steps must be in 0..{cfg.steps - 1} (the trajectory has {cfg.steps} steps), got {list(at)}")
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        policy = load_policy(get_base_model(cfg), cfg.device)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        probe_set = entropy_probe_set(cfg)
        rows = []
        for step in range(0, max(at) + 1):
            if step in at:
                state = optimizer.state_dict() if optimizer.state else None
                batch = collect(policy, cfg, step + 1)  # the batch the trajectory's next step trains on
                for row in probe_batch(policy, state, batch, cfg, methods, optimizers, controls, sgd_lr, probe_set,
                                       on_update):
                    rows.append({"seed": cfg.seed, "step": step, **row})
            if step < max(at):
                rl_step(policy, optimizer, cfg, step + 1)
            on_step(step)
        return rows
    finally:
        torch.set_num_threads(threads)
