"""tinyrlvr.model / sampler: KV-cached sampling equals uncached sampling, sampler log-probs equal a
full forward pass, left padding does not change a prompt's logits, top-p and greedy decoding."""

import pytest
import torch

from tinyrlvr.config import EngineConfig
from tinyrlvr.model import ModelShape, Policy, response_logprobs
from tinyrlvr.sampler import expand_prompts, generate
from tinyrlvr.task import EOS, Problems, encode_prompts, sample_problems


@pytest.fixture(scope="module")
def policy():
    """A random policy with spread-out logits (std 0.1 weights), so sampled tokens vary."""
    cfg = EngineConfig.create(estimator="grpo", n_layers=2, d_model=64, n_heads=4)
    torch.manual_seed(0)
    net = Policy(ModelShape.from_config(cfg))
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def prompts():
    problems = sample_problems(torch.tensor([1, 2, 3, 4] * 4), torch.Generator().manual_seed(3), heldout=False)
    return encode_prompts(problems, 11)


def test_kv_cache_sampling_equals_uncached_sampling(policy, prompts):
    ids, valid = prompts
    cached = generate(policy, ids, valid, 4, 8, 1.0, 1.0, torch.Generator().manual_seed(5))
    plain = generate(policy, ids, valid, 4, 8, 1.0, 1.0, torch.Generator().manual_seed(5), use_cache=False)
    assert torch.equal(cached.responses, plain.responses)
    assert torch.equal(cached.response_mask, plain.response_mask)
    torch.testing.assert_close(cached.logprobs, plain.logprobs, atol=1e-5, rtol=0)
    assert len(set(map(tuple, cached.responses.tolist()))) > 8  # the samples really differ


def test_sampler_logprobs_and_entropies_equal_full_forward(policy, prompts):
    ids, valid = prompts
    s = generate(policy, ids, valid, 4, 8, 0.7, 1.0, torch.Generator().manual_seed(6))
    full_ids, full_valid = expand_prompts(ids, valid, 4)
    with torch.no_grad():
        logp, entropy = response_logprobs(policy, full_ids, full_valid, s.responses, s.response_mask, 0.7, with_entropy=True)
    m = s.response_mask
    assert m.sum() > 0
    torch.testing.assert_close(logp[m], s.logprobs[m], atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy[m], s.entropies[m], atol=1e-5, rtol=0)
    assert bool((s.logprobs[~m] == 0).all())


def test_response_mask_ends_at_first_end_token(policy, prompts):
    ids, valid = prompts
    s = generate(policy, ids, valid, 4, 8, 1.0, 1.0, torch.Generator().manual_seed(7))
    for row, mask in zip(s.responses.tolist(), s.response_mask.tolist()):
        n = sum(mask)
        assert mask == [True] * n + [False] * (8 - n)
        if EOS in row:
            assert row.index(EOS) == n - 1


def test_left_padding_does_not_change_logits(policy):
    one = Problems(torch.tensor([3]), torch.tensor([4]), torch.tensor([1]))
    tight, tight_valid = encode_prompts(one, 5)  # no padding
    padded, padded_valid = encode_prompts(one, 11)  # six pads on the left
    with torch.no_grad():
        a = policy(tight, tight_valid)[:, -1]
        b = policy(padded, padded_valid)[:, -1]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert torch.isfinite(policy(padded, padded_valid)).all()  # pad rows attend to themselves: no NaN


def test_greedy_and_tiny_top_p_pick_the_argmax(policy, prompts):
    ids, valid = prompts
    greedy = generate(policy, ids, valid, 2, 8, 0.0, 1.0, torch.Generator().manual_seed(1))
    nucleus = generate(policy, ids, valid, 2, 8, 1.0, 1e-6, torch.Generator().manual_seed(2))
    assert torch.equal(greedy.responses, nucleus.responses)
    assert torch.equal(greedy.responses[0::2], greedy.responses[1::2])  # deterministic within a group


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_sampling_matches_forward_and_uncached_path(policy, prompts):
    net = Policy(policy.shape).cuda()
    net.load_state_dict(policy.state_dict())
    ids, valid = (t.cuda() for t in prompts)
    g = torch.Generator(device="cuda")
    g.manual_seed(3)
    cached = generate(net, ids, valid, 4, 8, 1.0, 1.0, g)
    g.manual_seed(3)
    plain = generate(net, ids, valid, 4, 8, 1.0, 1.0, g, use_cache=False)
    assert torch.equal(cached.responses, plain.responses)
    full_ids, full_valid = expand_prompts(ids, valid, 4)
    with torch.no_grad():
        logp, _ = response_logprobs(net, full_ids, full_valid, cached.responses, cached.response_mask)
    m = cached.response_mask
    torch.testing.assert_close(logp[m], cached.logprobs[m], atol=1e-5, rtol=0)


def test_tier_by_tier_warmup_loss_equals_the_padded_batch_loss(policy):
    """The warm-up trims each tier to its own length; loss and gradients must not change."""
    from tinyrlvr.base_model import demonstration_loss_backward
    from tinyrlvr.task import OUTPUT_VOCAB, PAD, target_responses

    problems = sample_problems(torch.tensor([1, 2, 3, 4, 1, 3] * 4), torch.Generator().manual_seed(4), heldout=False)
    prompts, valid = encode_prompts(problems, 11)
    answers = target_responses(problems, 8)
    mask = answers != PAD
    policy.zero_grad()
    logits = policy(torch.cat([prompts, answers], 1), torch.cat([valid, mask], 1), logits_from=10)[:, :-1]
    full = torch.nn.functional.cross_entropy(logits[mask], answers[mask].clamp(max=OUTPUT_VOCAB - 1))
    full.backward()
    expected = [p.grad.clone() for p in policy.parameters()]
    policy.zero_grad()
    loss = demonstration_loss_backward(policy, prompts, valid, answers, problems.tier)
    assert loss.item() == pytest.approx(full.item(), abs=1e-6)
    for p, g in zip(policy.parameters(), expected):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-4)
    policy.zero_grad()


def test_shared_prompt_logprobs_and_gradients_equal_the_full_forward(policy, prompts):
    """Each distinct prompt run once (rows shuffled as in a PPO mini-batch): same log-probs,
    entropies and gradients as running every row's prompt + response."""
    ids, valid = prompts
    s = generate(policy, ids, valid, 4, 8, 1.0, 1.0, torch.Generator().manual_seed(8))
    full_ids, full_valid = expand_prompts(ids, valid, 4)
    rows = torch.randperm(len(full_ids), generator=torch.Generator().manual_seed(9))[:40]
    args = (full_ids[rows], full_valid[rows], s.responses[rows], s.response_mask[rows], 0.7, True)
    results = []
    for share in (False, True):
        policy.zero_grad()
        logp, entropy = response_logprobs(policy, *args, share_prompts=share)
        m = args[3]
        ((logp * m).sum() + (entropy * m).sum()).backward()
        results.append((logp[m].detach(), entropy[m].detach(), [p.grad.clone() for p in policy.parameters()]))
    policy.zero_grad()
    (lp_a, ent_a, grads_a), (lp_b, ent_b, grads_b) = results
    assert args[3].sum() > 0 and args[3][:, 1:].any()  # responses longer than one token
    torch.testing.assert_close(lp_b, lp_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent_b, ent_a, atol=1e-5, rtol=0)
    for a, b in zip(grads_a, grads_b):  # round-off relative to the gradient's scale (sums over ~200 tokens)
        torch.testing.assert_close(b, a, atol=1e-5 * float(a.abs().max()), rtol=1e-4)
