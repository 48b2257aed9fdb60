"""Optuna through Ray Tune, with every sample planned by the planner.

``PlannedSearch`` wraps Tune's ``OptunaSearch``: Optuna proposes values for the declared ranges;
``experiments.plan.plan_sampled`` turns each proposal into a full ``TrialSpec`` (its own name,
label, key and MLflow params, exactly as a grid cell gets), and Tune's config carries that spec.
Nothing downstream patches a template. The searcher is pickled into the Tune experiment, so a
resumed sweep plans its remaining samples the same way.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ray import tune
from ray.tune.search import Searcher

from experiments.spec import SearchRange, Study
from orchestrator.identity import stamp


def tune_space(ranges: Sequence[SearchRange]) -> tuple[dict[str, Any], dict[str, str]]:
    """(Tune search space with plain names p0, p1, ..., plain name -> setting key).

    Plain names because setting keys may hold dots (``params.temperature``), which Tune reads as
    nesting."""

    space, keys = {}, {}
    for i, r in enumerate(ranges):
        name = f"p{i}"
        keys[name] = r.key
        if r.integer:
            space[name] = tune.lograndint(int(r.low), int(r.high) + 1) if r.log else tune.randint(int(r.low), int(r.high) + 1)
        else:
            space[name] = tune.loguniform(r.low, r.high) if r.log else tune.uniform(r.low, r.high)
    return space, keys


class PlannedSearch(Searcher):
    """A Searcher whose suggestions are planned trials: ``{"trial": TrialSpec dict, "sample": values}``."""

    def __init__(self, inner: Searcher, study: Study, plan_options: Mapping[str, Any], keys: Mapping[str, str]):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.study, self.plan_options, self.keys = inner, study, dict(plan_options), dict(keys)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str):
        from experiments.plan import plan_sampled  # deferred: omegaconf

        proposal = self.inner.suggest(trial_id)
        if not isinstance(proposal, dict):  # None (wait) or Searcher.FINISHED
            return proposal
        sample = {self.keys[name]: value for name, value in proposal.items()}

        (spec,) = stamp([plan_sampled(self.study, self.plan_options, sample)])  # its key names its base model
        return {"trial": spec.to_dict(), "sample": sample}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)
