"""tinyrlvr.task: the exact verifier on hand-made cases, the vectorized scorer against it, the split."""

import torch

from tinyrlvr.task import (Problems, answer_text, decode, encode_prompts, is_heldout, sample_problems,
                           score, target_responses, verify)


def test_verifier_hand_made_cases():
    assert answer_text(12, 39) == "15$"  # 51 reversed
    assert verify(12, 39, "15$")
    assert verify(50, 50, "001$")  # 100 reversed keeps its zeros
    assert verify(0, 0, "0$")
    assert verify(9, 8, "71$___")  # padding after the end token is ignored
    assert not verify(12, 39, "15")  # no end token
    assert not verify(12, 39, "51$")  # not reversed
    assert not verify(50, 50, "1$")  # dropped zeros
    assert not verify(12, 39, "150$")  # extra digit
    assert not verify(12, 39, "$15$")


def test_prompt_encoding_is_left_padded():
    problems = Problems(torch.tensor([7, 1234]), torch.tensor([5, 8766]), torch.tensor([1, 4]))
    ids, valid = encode_prompts(problems, 11)
    assert decode(ids[0]) == "______^7+5="
    assert decode(ids[1]) == "^1234+8766="
    assert valid[0].tolist() == [False] * 6 + [True] * 5
    assert bool(valid[1].all())
    targets = target_responses(problems, 8)
    assert decode(targets[0]) == "21$_____"
    assert decode(targets[1]) == "00001$__"


def test_vectorized_score_agrees_with_text_verifier():
    g = torch.Generator().manual_seed(0)
    problems = sample_problems(torch.tensor([1, 2, 3, 4] * 25), g, heldout=False)
    targets = target_responses(problems, 8)
    responses = targets.clone()
    flip = torch.rand(100, generator=g) < 0.5  # corrupt half of them in one random column
    col = torch.randint(0, 3, (100,), generator=g)
    responses[flip, col[flip]] = (responses[flip, col[flip]] + 1) % 13
    rewards = score(responses, targets)
    expected = [verify(int(a), int(b), decode(r)) for a, b, r in zip(problems.a, problems.b, responses)]
    assert rewards.tolist() == [float(e) for e in expected]
    assert 0 < rewards.sum() < 100


def test_training_stream_never_contains_heldout_pairs_and_eval_only_heldout():
    g = torch.Generator().manual_seed(1)
    tiers = torch.tensor([1, 2, 3, 4] * 200)
    train = sample_problems(tiers, g, heldout=False)
    held = sample_problems(tiers, g, heldout=True)
    assert not bool(is_heldout(train.a, train.b).any())
    assert bool(is_heldout(held.a, held.b).all())
    for p in (train, held):  # exactly `tier` digits (tier 1: 0..9)
        lo = torch.where(p.tier == 1, 0, 10 ** (p.tier - 1))
        assert bool(((p.a >= lo) & (p.a < 10 ** p.tier) & (p.b >= lo) & (p.b < 10 ** p.tier)).all())
    pairs = torch.arange(100)
    share = is_heldout(pairs // 10, pairs % 10).float().mean()
    assert 0.1 < share < 0.3
