"""The default base model (embedded-carry) has what issue 24 asks of a testbed in the paper's regime,
checked on the shipped file with bounds loose enough for any machine (RESULTS.md has the measured
values on held-out seeds): difficulty spread over the groups of 8 at step 0, a hard split the base
mostly fails while easier tiers are partly solved, and kappa-hat > 0."""

import pytest

from experiments.presets import EMBEDDED_MODELS, resolve_preset
from tinyrlvr.base_model import get_base_model, load_policy, shipped_base_model_path
from tinyrlvr.base_properties import describe, measure
from tinyrlvr.config import EngineConfig


@pytest.fixture(scope="module")
def default_base(tmp_path_factory):
    assert EMBEDDED_MODELS[0] == "embedded-carry"
    settings = resolve_preset("embedded-carry").settings_dict()
    cfg = EngineConfig.create(estimator="grpo", cache_dir=str(tmp_path_factory.mktemp("empty-cache")), **settings)
    path = get_base_model(cfg)
    assert path == shipped_base_model_path(cfg)  # the shipped file, never a warm-up
    return cfg, measure(load_policy(path), cfg, seeds=(0, 1))


def test_step0_groups_spread_over_every_difficulty(default_base):
    _, props = default_base
    assert props.share(0, 0) >= 0.08, describe(props)  # measured ~0.2 on held-out seeds (RESULTS.md)
    assert props.share(1, 3) >= 0.15, describe(props)
    assert props.share(4, 7) >= 0.15, describe(props)


def test_hard_split_mostly_failed_while_easy_tiers_partly_solved(default_base):
    cfg, props = default_base
    assert props.accuracy["eval/hard/accuracy"] <= 0.4, describe(props)
    easiest = props.accuracy[f"eval/tier{min(cfg.tiers)}/accuracy"]
    assert 0.3 <= easiest < 1.0, describe(props)
    assert props.accuracy["eval/hard/pass_at_16"] > props.accuracy["eval/hard/pass_at_1"]  # successes exist to find


def test_kappa_is_positive_the_papers_regime(default_base):
    _, props = default_base
    assert props.kappa > 0, describe(props)
