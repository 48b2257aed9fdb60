"""The verl backend's Ray seams on a real local Ray cluster with declared (logical) GPUs.

- the entry point's TaskRunner (verl's ``TaskRunnerV1`` plus our registration step) runs as a real
  Ray actor and finds ``asym_grpo`` in verl's estimator registry and our trainer in verl's v1
  trainer registry, in that actor's own process;
- our trainer subclass built from the composed config runs verl's ``sync`` machinery, and its
  ``_compute_advantage`` (verl's, through real TransferQueue actors) adds the diagnostics, equal to
  the ``estimators`` functions on the same rows, with verl-style pad rows skipped;
- the placement-group watchdog fails a placement group that can never be placed within its
  timeout, and ignores ready ones and other jobs' ones;
- the logical admission resource: trials that together ask for more units than the cluster
  declares run one after another, never at once.
"""

from __future__ import annotations

import os
import time

import pytest
from ray_local import start_local_ray

ray = pytest.importorskip("ray")
# verl's v1 trainer imports TransferQueue (verl's verl-core extra); without it only those tests skip
needs_transfer_queue = pytest.mark.skipif(__import__("importlib").util.find_spec("transfer_queue") is None,
                                          reason="TransferQueue (verl[verl-core]) is not installed")

from experiments.plan import plan  # noqa: E402
from backends.verl.admission import (  # noqa: E402
    ADMISSION_RESOURCE,
    JOB_RESOURCE,
    PlacementGroupTimeout,
    PlacementGroupWatchdog,
    owned_by_job,
    trial_resources,
)
from backends.verl.render import RenderPaths, render_overrides  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    start_local_ray(num_cpus=2, num_gpus=4, resources={ADMISSION_RESOURCE: 4})
    yield
    ray.shutdown()


@needs_transfer_queue
def test_registration_check_inside_the_task_runner_actor(local_ray):
    from backends.verl.entry import compose_config, task_runner_class

    trial = next(t for t in plan("main", backend="verl", models=["qwen3-4b"]) if t.estimator == "asym")
    config = compose_config(render_overrides(trial, RenderPaths("/data", "/ckpt")))
    runner = task_runner_class().options(num_cpus=0).remote()
    found = ray.get(runner.check_registration.remote(config), timeout=300)
    assert found["adv_estimator"] == "asym_grpo"
    assert found["trainer"] == "backends.verl.trainer.AsymPPOTrainer"
    assert found["pid"] != os.getpid()  # it ran in the actor, not here
    ray.kill(runner)


def test_watchdog_fails_a_placement_group_that_never_gets_its_gpus(local_ray):
    from ray.util.placement_group import placement_group, remove_placement_group

    job = ray.get_runtime_context().get_job_id()
    ready = placement_group([{"GPU": 1}], name="fits")
    ray.get(ready.ready(), timeout=60)
    stuck = placement_group([{"GPU": 8}], name="never")  # 8 GPUs on a 4-GPU cluster
    try:
        other_job = PlacementGroupWatchdog(1.0, owner=owned_by_job("ffffffff"))
        watchdog = PlacementGroupWatchdog(2.0, owner=owned_by_job(job))
        start = time.monotonic()
        watchdog.check()  # first sight: pending, not yet too long
        assert set(watchdog.pending()) == {stuck.id.hex()}
        with pytest.raises(PlacementGroupTimeout, match="never.*not ready after"):
            while time.monotonic() - start < 20:
                watchdog.check()
                other_job.check()  # never raises: not its job's placement group
                time.sleep(0.5)
        assert 2.0 <= time.monotonic() - start < 20
    finally:
        remove_placement_group(stuck)
        remove_placement_group(ready)


def test_admission_resource_serialises_trials_that_would_double_book(local_ray):
    trial = plan("main", backend="verl", models=["qwen3-4b"])[0]
    import dataclasses

    multi = dataclasses.replace(trial, settings=tuple(sorted({**trial.settings_dict(), "nnodes": 2,
                                                               "n_gpus_per_node": 2, "gpus_per_trial": 4}.items())))
    assert trial_resources(trial) == {"CPU": 1.0, "GPU": 4.0}
    need = trial_resources(multi)
    assert need == {"CPU": 1.0, ADMISSION_RESOURCE: 4.0, JOB_RESOURCE: 1.0}

    @ray.remote
    def stub_trial():
        start = time.time()
        time.sleep(1.0)
        return start, time.time()

    runs = [stub_trial.options(num_cpus=0, resources={ADMISSION_RESOURCE: need[ADMISSION_RESOURCE]}).remote()
            for _ in range(2)]
    (s1, e1), (s2, e2) = sorted(ray.get(runs, timeout=120))
    assert s2 >= e1 - 0.05  # the second waited for the first's units


@needs_transfer_queue
def test_trainer_subclass_adds_the_diagnostics_through_transfer_queue(local_ray):
    """verl's real v1 trainer path: rows in TransferQueue -> AsymPPOTrainer._compute_advantage
    (verl's, with our asym_grpo) -> our diagnostics in the step's metrics, pad rows skipped."""
    import torch
    import transfer_queue as tq
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    from estimators import diagnostics as diag
    from estimators.advantages import asym
    from backends.verl.entry import compose_config
    from backends.verl.trainer import AsymPPOTrainer

    trial = next(t for t in plan("main", backend="verl", models=["qwen3-4b"]) if t.alpha_neg == 0.4)
    config = compose_config(render_overrides(trial, RenderPaths("/data", "/ckpt"))
                            + ["transfer_queue.backend.SimpleStorage.num_data_storage_units=1"])
    tq.init(config.transfer_queue)
    try:
        trainer = AsymPPOTrainer(config)
        trainer.global_steps = 1  # what verl's fit() has set when a step computes advantages
        assert trainer.trainer_mode == "sync" and type(trainer.replay_buffer).__name__ == "ReplayBuffer"
        gen = torch.Generator().manual_seed(0)
        rows, keys, tags = [], [], []
        for g, k in enumerate([0, 3, 8, 5, 1]):
            for i in range(8):
                length = int(torch.randint(1, 12, (1,), generator=gen))
                score = torch.zeros(length)
                score[-1] = float(i < k)
                rows.append({"uid": f"u{g}", "response_mask": torch.ones(length, dtype=torch.int64), "rm_scores": score,
                             "old_log_probs": -torch.rand(length, generator=gen) * 2,
                             "entropy": torch.rand(length, generator=gen)})
                keys.append(f"u{g}_{i}_0")
                tags.append({"is_padding": False})
        for j in range(3):  # verl's pad rows: one eos token, zero mask, uid pad...
            rows.append({"uid": "padfeed", "response_mask": torch.zeros(1, dtype=torch.int64), "rm_scores": torch.zeros(1),
                         "old_log_probs": torch.full((1,), -9.0), "entropy": torch.full((1,), 9.0)})
            keys.append(f"padfeed_{j}_0")
            tags.append({"is_padding": True})
        meta = tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(rows), tags=tags)
        metrics: dict = {}
        trainer._compute_advantage(meta, metrics)
    finally:
        tq.close()

    real = rows[:40]
    rewards = torch.tensor([float(r["rm_scores"].sum() > 0) for r in real])
    groups = torch.tensor([int(r["uid"][1:]) for r in real])
    c = torch.stack([r["old_log_probs"].mean() for r in real])
    adv = asym(rewards, groups, 0.9, 0.4)
    pos, neg = diag.advantage_mass(rewards, adv)
    tokens = torch.cat([r["entropy"] for r in real])
    want = {"asym/none_solved_frac": 0.2, "asym/all_solved_frac": 0.2, "asym/reward_mean": float(rewards.mean()),
            "asym/kappa": diag.kappa(rewards, groups, c), "asym/adv_mass_pos": pos, "asym/adv_mass_neg": neg,
            "asym/entropy": float(tokens.mean()),
            "asym/response_length": float(sum(len(r["entropy"]) for r in real) / len(real))}
    assert set(want) <= set(metrics)
    for key, value in want.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@needs_transfer_queue
def test_trainer_subclass_hands_old_log_probs_to_the_unlikeliness_variant(local_ray):
    """A comparator that ranks by old log-probs: the trainer fetches them from TransferQueue for the
    same rows, verl's own step computes the advantage, and what lands in TransferQueue equals our
    estimator on those rows (pad rows 0)."""
    import torch
    import transfer_queue as tq
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    from estimators import compute_advantages
    from backends.verl.entry import compose_config
    from backends.verl.trainer import AsymPPOTrainer

    trial = next(t for t in plan("comparators", backend="verl") if t.estimator == "unlikeliness")
    config = compose_config(render_overrides(trial, RenderPaths("/data", "/ckpt"))
                            + ["transfer_queue.backend.SimpleStorage.num_data_storage_units=1"])
    tq.init(config.transfer_queue)
    try:
        trainer = AsymPPOTrainer(config)
        trainer.global_steps = 1  # what verl's fit() has set when a step computes advantages
        gen = torch.Generator().manual_seed(1)
        rows, keys, tags = [], [], []
        for g, k in enumerate([2, 8, 5]):
            for i in range(8):
                length = int(torch.randint(1, 9, (1,), generator=gen))
                score = torch.zeros(length)
                score[-1] = float(i < k)
                rows.append({"uid": f"u{g}", "response_mask": torch.ones(length, dtype=torch.int64), "rm_scores": score,
                             "old_log_probs": -torch.rand(length, generator=gen) * 2,
                             "entropy": torch.rand(length, generator=gen)})
                keys.append(f"u{g}_{i}_0")
                tags.append({"is_padding": False})
        rows.append({"uid": "padfeed", "response_mask": torch.zeros(1, dtype=torch.int64), "rm_scores": torch.zeros(1),
                     "old_log_probs": torch.full((1,), -9.0), "entropy": torch.full((1,), 9.0)})
        keys.append("padfeed_0_0")
        tags.append({"is_padding": True})
        meta = tq.kv_batch_put(keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(rows), tags=tags)
        trainer._compute_advantage(meta, {})
        written = tq.kv_batch_get(keys=keys, partition_id="train", select_fields=["advantages"]).to_padded_tensor()
    finally:
        tq.close()

    real = rows[:24]
    rewards = torch.tensor([float(r["rm_scores"].sum() > 0) for r in real])
    groups = torch.tensor([int(r["uid"][1:]) for r in real])
    want = compute_advantages("unlikeliness", rewards, groups, seq_logprob=torch.stack([r["old_log_probs"].mean() for r in real]))
    got = written["advantages"][:24, 0]  # every response has its first token at column 0
    assert torch.allclose(got, want, atol=1e-6)
    assert float(written["advantages"][24].abs().sum()) == 0.0
