"""Two engines, one algorithm: verl's policy loss on the exported GPT-2 and the embedded engine's
update, from the same weights, batch and advantages, give the same new weights, log-probs and entropy.

verl's side is its own code: ``core_algos.compute_policy_loss_vanilla`` (clipped surrogate with
verl's dual clip, ``agg_loss`` token-mean over the batch's tokens) and ``verl.utils.torch_functional``
(log-probs, entropy) on the Hugging Face model verl trains; the embedded side is
``tinyrlvr.loss.ppo_clip_loss`` on ``tinyrlvr.model.Policy``. Both take one AdamW step with the
same hyper-parameters and gradient clipping. Tolerance: 1e-5 absolute on float32 (log-probs,
entropy, loss, gradients, new weights; the attention key bias aside, see below).

By design they differ in verl's dual clip (``clip_ratio_c`` = 3: for negative advantages the loss is
capped at ``-3 A``); it binds only when a token's ratio exceeds 3, never in a first update from the
sampling policy (ratio = 1), so the engine has no such switch. What this does not run: verl's FSDP2
engine itself (that runs in tests/test_verl_cpu.py's sweep, whose rollout log-probs equal the actor's).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("verl")

from estimators import broadcast_to_tokens, compute_advantages  # noqa: E402
from backends.verl.cpu import assets as A  # noqa: E402
from tinyrlvr.base_model import get_base_model, load_policy  # noqa: E402
from tinyrlvr.loss import ppo_clip_loss  # noqa: E402
from tinyrlvr.model import positions_from_mask, response_logprobs  # noqa: E402
from tinyrlvr.rollout import collect  # noqa: E402
from tinyrlvr.task import OUTPUT_VOCAB  # noqa: E402

TOL = 1e-5


def verl_logp_entropy(hf, batch):
    from verl.utils.torch_functional import entropy_from_logits, logprobs_from_logits

    p = batch.prompts.shape[1]
    ids = torch.cat([batch.prompts, batch.responses], 1)
    valid = torch.cat([batch.prompt_valid, batch.response_mask], 1)
    logits = hf(input_ids=ids, attention_mask=valid.long(), position_ids=positions_from_mask(valid)).logits
    logits = logits[:, p - 1:-1].float()  # position p-1+j predicts response token j, as verl slices
    return logprobs_from_logits(logits, batch.responses), entropy_from_logits(logits)


def verl_loss(logp, batch, adv, cfg):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla

    mask = batch.response_mask.float()
    config = OmegaConf.create({"clip_ratio": cfg.clip_low, "clip_ratio_low": cfg.clip_low,
                               "clip_ratio_high": cfg.clip_high, "clip_ratio_c": 3.0,
                               "global_batch_info": {"dp_size": 1, "batch_num_tokens": int(mask.sum()),
                                                     "global_batch_size": mask.shape[0]}})
    loss, _ = compute_policy_loss_vanilla(batch.old_logp, logp, adv, mask, "token-mean", config=config)
    return loss


def gpt2_grads_as_engine(hf, policy) -> dict[str, torch.Tensor]:
    """GPT-2's gradients under the engine's names/layouts (the inverse of ``assets.gpt2_state_dict``)."""
    engine_names = {}
    for name in policy.state_dict():
        engine_names[name] = name
    grads = {k: p.grad for k, p in hf.named_parameters()}
    out = {"tok.weight": grads["transformer.wte.weight"], "pos.weight": grads["transformer.wpe.weight"],
           "ln_f.weight": grads["transformer.ln_f.weight"], "ln_f.bias": grads["transformer.ln_f.bias"],
           "head.weight": grads["lm_head.weight"][:OUTPUT_VOCAB]}
    for i in range(policy.shape.n_layers):
        src, dst = f"transformer.h.{i}.", f"blocks.{i}."
        for a, b in (("ln_1", "ln1"), ("ln_2", "ln2")):
            out[f"{dst}{b}.weight"], out[f"{dst}{b}.bias"] = grads[f"{src}{a}.weight"], grads[f"{src}{a}.bias"]
        for a, b in (("attn.c_attn", "qkv"), ("attn.c_proj", "proj"), ("mlp.c_fc", "mlp.0"), ("mlp.c_proj", "mlp.2")):
            out[f"{dst}{b}.weight"], out[f"{dst}{b}.bias"] = grads[f"{src}{a}.weight"].t(), grads[f"{src}{a}.bias"]
    assert set(out) == set(engine_names)
    return out


@pytest.mark.parametrize("estimator, alphas", [("reinforce", (None, None)), ("grpo", (None, None)),
                                               ("asym", (0.9, 0.4))])
def test_one_update_same_weights_logprobs_entropy(estimator, alphas):
    cfg = A.engine_config(prompts_per_step=4, group_size=4, mini_batches=1, estimator=estimator,
                          alpha_pos=alphas[0], alpha_neg=alphas[1])
    base = get_base_model(cfg)
    policy = load_policy(base)
    hf = A.to_gpt2(load_policy(base)).train()
    batch = collect(policy, cfg, step=1)
    adv = broadcast_to_tokens(compute_advantages(cfg.estimator, batch.rewards, batch.group_ids, cfg.alpha_pos,
                                                 cfg.alpha_neg), batch.response_mask)
    assert bool(adv.abs().sum() > 0), "the batch needs a mixed group"

    # the embedded engine's update (tinyrlvr/update.py, one mini-batch)
    opt_e = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    logp_e, ent_e = response_logprobs(policy, batch.prompts, batch.prompt_valid, batch.responses, batch.response_mask,
                                      cfg.temperature, with_entropy=True)
    loss_e, _ = ppo_clip_loss(logp_e, batch.old_logp, adv, batch.response_mask, cfg.clip_low, cfg.clip_high,
                              cfg.loss_agg, cfg.max_new_tokens)
    # verl's loss on the model verl trains
    opt_v = torch.optim.AdamW(hf.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    logp_v, ent_v = verl_logp_entropy(hf, batch)
    loss_v = verl_loss(logp_v, batch, adv, cfg)

    m = batch.response_mask
    assert torch.allclose(logp_e[m], logp_v[m], atol=TOL) and torch.allclose(ent_e[m], ent_v[m], atol=TOL)
    assert float(loss_e.detach()) == pytest.approx(float(loss_v.detach()), abs=TOL)
    loss_e.backward()
    loss_v.backward()
    grads_v = gpt2_grads_as_engine(hf, policy)
    for name, p in policy.named_parameters():
        assert torch.allclose(p.grad, grads_v[name], atol=TOL), name
    assert float(hf.lm_head.weight.grad[OUTPUT_VOCAB:].abs().max()) == 0.0  # the pinned PAD/BOS rows
    for model, opt in ((policy, opt_e), (hf, opt_v)):
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    with torch.no_grad():
        new_e, ent_new_e = response_logprobs(policy, batch.prompts, batch.prompt_valid, batch.responses,
                                             batch.response_mask, cfg.temperature, with_entropy=True)
        new_v, ent_new_v = verl_logp_entropy(hf.eval(), batch)
    assert float((new_e - logp_e.detach())[m].abs().max()) > 1e-4  # the update moved the policy
    assert torch.allclose(new_e[m], new_v[m], atol=TOL) and torch.allclose(ent_new_e[m], ent_new_v[m], atol=TOL)
    exported = A.gpt2_state_dict(policy)
    d = policy.shape.d_model
    for name, value in hf.state_dict().items():
        if name.endswith("attn.c_attn.bias"):
            # the key bias has zero gradient in exact arithmetic (softmax ignores a shift shared by all
            # keys): both sides hold round-off (~1e-10), and Adam's first step turns it into +-lr
            keep = torch.ones_like(value, dtype=torch.bool)
            keep[d:2 * d] = False
            assert torch.allclose(value[keep], exported[name][keep], atol=TOL), name
        elif name in exported and name != "lm_head.weight":
            assert torch.allclose(value, exported[name], atol=TOL), (name, float((value - exported[name]).abs().max()))
    assert torch.allclose(hf.lm_head.weight[:OUTPUT_VOCAB], exported["lm_head.weight"][:OUTPUT_VOCAB], atol=TOL)
