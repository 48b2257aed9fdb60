"""`python -m backends.verl.entry <hydra overrides>`: verl's ``main_ppo`` with our parts.

What it adds to verl 0.9.1's ``verl.trainer.main_ppo.main``:

- the config is composed with Hydra's compose API from verl's own ``verl.trainer.config``
  (the same call the CI test makes, so what runs is what was tested) and validated as verl does;
- the TaskRunner is verl's ``TaskRunnerV1`` with one step first: inside that Ray actor (where
  verl's trainer computes advantages) it imports ``backends.verl.adapter`` (registers
  ``asym_grpo``) and ``backends.verl.trainer`` (registers the ``asym_sync`` trainer),
  then checks both registries and fails loudly: verl swallows plugin import errors silently.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from backends.verl.render import CUSTOM_ESTIMATOR


def compose_config(overrides: Sequence[str]):
    """verl's ``ppo_trainer`` config with our overrides; a wrong key raises Hydra's error."""
    from hydra import compose, initialize_config_module  # deferred: hydra
    from hydra.core.global_hydra import GlobalHydra  # deferred: hydra

    GlobalHydra.instance().clear()
    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=list(overrides))


def validate(config) -> None:
    """verl's own start-up checks (``main_ppo.main``)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy  # deferred: verl
    from verl.utils.config import validate_config  # deferred: verl

    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))


def ensure_estimator_registered(config) -> str:
    """Import our estimator plugin here and check verl can find the configured estimator."""
    from verl.trainer.ppo import core_algos  # deferred: verl

    import backends.verl.adapter  # noqa: F401  deferred: numpy, torch, verl; registers asym_grpo on import

    known = core_algos.ADV_ESTIMATOR_REGISTRY
    wanted = {CUSTOM_ESTIMATOR, str(config.algorithm.adv_estimator)}
    missing = sorted(name for name in wanted if name not in known)
    if missing:
        raise RuntimeError(f"verl's advantage registry lacks {', '.join(missing)} in this process "
                           f"(known: {', '.join(sorted(known))}); check that backends.verl.adapter imports")
    return str(config.algorithm.adv_estimator)


def ensure_trainer_registered(config) -> str:
    """Import our trainer subclass here and check verl's v1 trainer registry selects it."""
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY  # deferred: verl

    import backends.verl.trainer  # noqa: F401  deferred: numpy, torch, verl; registers asym_sync on import

    mode = str(config.trainer.v1.trainer_mode)
    if mode not in TRAINER_REGISTRY:
        raise RuntimeError(f"verl's trainer registry lacks '{mode}' (known: {', '.join(sorted(TRAINER_REGISTRY))})")
    return f"{TRAINER_REGISTRY[mode].__module__}.{TRAINER_REGISTRY[mode].__name__}"


def ensure_registered(config) -> dict[str, Any]:
    """Both checks; returns what was found (for logs and tests)."""

    return {"adv_estimator": ensure_estimator_registered(config), "trainer": ensure_trainer_registered(config),
            "pid": os.getpid()}


def task_runner_class():
    """verl's ``TaskRunnerV1`` as a Ray actor class that registers and checks our parts first."""
    import ray  # deferred: ray
    from verl.trainer.main_ppo import TaskRunnerV1  # deferred: verl

    base = TaskRunnerV1.__ray_metadata__.modified_class  # the class under verl's @ray.remote

    class AsymTaskRunner(base):
        def check_registration(self, config) -> dict[str, Any]:
            return ensure_registered(config)

        def run(self, config):
            print(f"asym: registered in the TaskRunner: {ensure_registered(config)}", flush=True)
            return super().run(config)

    return ray.remote(AsymTaskRunner)


def main(argv: Sequence[str]) -> None:
    from verl.trainer.main_ppo import run_ppo  # deferred: verl
    from verl.utils.device import auto_set_device  # deferred: verl

    config = compose_config(argv)
    auto_set_device(config)
    validate(config)
    run_ppo(config, task_runner_class=task_runner_class())


if __name__ == "__main__":
    main(sys.argv[1:])
