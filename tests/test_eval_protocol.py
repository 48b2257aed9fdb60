"""The evaluation protocol's measures: the unbiased pass@k against brute force, the curve area, the
hard split (held out, the kind it says), the carry error model, and pass@k's bad input at the CLI."""

import itertools
import math
from pathlib import Path

import pytest
import torch

from common import metric_names
from estimators.eval_measures import normalized_area, pass_at_k, pass_at_k_curve
from orchestrator.cli import main
from tinyrlvr import seeding
from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig
from tinyrlvr.difficulty import carry_count, drop_carries, sample_hard_problems
from tinyrlvr.evaluate import Evaluator
from tinyrlvr.protocol import EvalProtocol
from tinyrlvr.task import Problems, decode, is_heldout, target_responses, verify


def brute_pass_at_k(c: int, n: int, k: int) -> float:
    """Share of the k-subsets of n samples (c of them correct) that hold at least one correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 4, 7])
def test_pass_at_k_equals_brute_force_over_every_subset(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(torch.tensor([c]), n, k) == pytest.approx(brute_pass_at_k(c, n, k), abs=1e-12)


def test_pass_at_k_averages_prompts_and_matches_the_binomial_form():
    correct = torch.tensor([0, 3, 16, 1])
    curve = pass_at_k_curve(correct, 16, 16)
    for k, value in curve.items():
        expected = sum(1 - math.comb(16 - c, k) / math.comb(16, k) for c in correct.tolist()) / 4
        assert value == pytest.approx(expected, abs=1e-12)
    assert curve[1] == pytest.approx(20 / 64) and curve[16] == pytest.approx(0.75)
    assert all(curve[k] <= curve[k + 1] for k in range(1, 16))


@pytest.mark.parametrize("k, n, counts", [(17, 16, [1]), (0, 16, [1]), (2, 4, [5]), (2, 4, [-1])])
def test_pass_at_k_refuses_impossible_input(k, n, counts):
    with pytest.raises(ValueError):
        pass_at_k(torch.tensor(counts), n, k)


def test_normalized_area_is_the_mean_height_of_the_trapezoids():
    assert normalized_area([0, 10, 20], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert normalized_area([0, 10], [0.4, 0.4]) == pytest.approx(0.4)
    assert normalized_area([0], [0.3]) == 0.3
    with pytest.raises(ValueError):
        normalized_area([0, 0], [0.1, 0.2])


def test_carry_drops_follow_the_carry_index_and_make_wrong_answers():
    # 58+67 = 125: carries into columns 1 and 2 (the second writes the leading 1)
    p = Problems(torch.tensor([58, 12, 99]), torch.tensor([67, 34, 1]), torch.tensor([2, 2, 2]))
    assert carry_count(p.a, p.b).tolist() == [2, 0, 2]
    target = target_responses(p, 6)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(drop_carries(target, p, torch.tensor([0.0]), gen), target)
    every = [decode(r).split("$")[0] + "$" for r in drop_carries(target, p, torch.tensor([1.0]), gen)]
    assert every == ["51$", "64$", "09$"]  # carry-free 12+34 untouched; the leading 1 left out
    only_second = [decode(r).split("$")[0] + "$" for r in drop_carries(target, p, torch.tensor([0.0, 1.0]), gen)]
    assert only_second == ["52$", "64$", "00$"]
    assert not any(verify(int(a), int(b), s) for a, b, s in zip(p.a[[0, 2]], p.b[[0, 2]], [every[0], every[2]]))


def test_hard_split_is_held_out_with_enough_carries_and_fixed():
    hard = sample_hard_problems((2, 3, 4, 5), 64, 3, seeding.generator(1, 0, "eval-set"))
    assert len(hard) == 64 and bool(is_heldout(hard.a, hard.b).all())
    assert bool((carry_count(hard.a, hard.b) >= 3).all()) and set(hard.tier.tolist()) == {3, 4, 5}
    again = sample_hard_problems((2, 3, 4, 5), 64, 3, seeding.generator(1, 0, "eval-set"))
    assert torch.equal(hard.a, again.a) and torch.equal(hard.b, again.b)
    with pytest.raises(ValueError, match="at most t"):
        EngineConfig.create(estimator="grpo", **{**SMOKE_OVERRIDES, "eval_hard_min_carries": 3})


def test_smoke_protocol_logs_hard_accuracy_auc_and_pass_at_k():
    from tinyrlvr.base_model import get_base_model, load_policy

    cfg = EngineConfig.create(estimator="grpo", steps=3, **SMOKE_OVERRIDES)
    protocol = EvalProtocol.from_config(cfg)
    assert protocol.benchmarks == ("tier1", "tier2", "hard") and protocol.passes(0, 3) and not protocol.passes(1, 3)
    evaluator = Evaluator(cfg)
    policy = load_policy(get_base_model(cfg))
    first = evaluator.metrics(policy, 0)
    pass_names = [metric_names.eval_pass_at_k("hard", k) for k in range(1, cfg.eval_pass_k + 1)]
    assert set(pass_names) <= set(first)
    assert first["eval/hard/auc"] == first["eval/hard/accuracy"]
    assert [first[n] for n in pass_names] == sorted(first[n] for n in pass_names)
    second = evaluator.metrics(policy, 2)  # not the last step: no pass@k
    assert not set(pass_names) & set(second)
    assert second["eval/hard/auc"] == pytest.approx((first["eval/hard/accuracy"] + second["eval/hard/accuracy"]) / 2)


def test_pass_at_k_beyond_its_samples_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["sweep", "grid", "--alpha-pos", "0", "--alpha-neg", "0", "--set", "eval_pass_k=32", "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "eval_pass_k (32) must not exceed eval_pass_samples (16)" in err
    Path("pk.yaml").write_text("eval_pass_samples: 8\n")  # the default pass@16 then asks for 16 of 8
    with pytest.raises(SystemExit) as done:
        main(["sweep", "isolation", "--config", "pk.yaml", "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and "eval_pass_k (16) must not exceed eval_pass_samples (8)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pk.yaml"]  # nothing written
