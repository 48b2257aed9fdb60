"""The one adapter module for verl's trainer internals (verl 0.9.1, v1 trainer).

Imported inside verl's TaskRunner process by our entry point (``entry.py``), never by the CLI.
Two extension points, both selected by the rendered overrides (``render.py``):

- ``AsymPPOTrainer``: verl's ``PPOTrainerSync`` registered as ``trainer.v1.trainer_mode=asym_sync``.
  It overrides ``_compute_advantage`` (call verl's, then read ``uid``, ``rm_scores``,
  ``old_log_probs``, ``advantages``, ``entropy`` and ``response_mask`` back from TransferQueue) and
  adds the paper's diagnostics (``diagnostics.batch_diagnostics``) to the step's metrics. The
  padding rows verl appends (tag ``is_padding``) are skipped. Once per rollout batch, before any
  update: kappa as App E defines it, and the pre-update per-channel telemetry. For the comparator
  variants that read ``old_log_probs`` / ``entropy`` (Unlikeliness, Entropy-adv), it fetches those
  fields for the same rows first and runs verl's step inside ``backends.verl.adapter.rollout_inputs``.
  After the actor update, every ``trainer.asym_logp_gain_every`` steps (the preset's
  ``logp_gain_every``; 0 = never), one more ``compute_log_prob`` of the batch with the updated
  actor gives the log-prob gain on correct rollouts (Fig 2 d,h); its time is verl's
  ``timing_s/asym_logp_gain``. With the CPU rollout, each step also logs how far verl's weight sync
  moved the served weights from the base model (``asym_cpu/weight_change``), and the replay buffer
  polls every 0.05 s instead of verl's 2 s (``replay_poll_s``: a CPU step waited for the poll).
  verl's loggers see no step an earlier attempt of the trial logged (``LoggedOnce``): a resumed
  attempt's MLflow keys stay once per step.
- ``AsymRLDataset``: verl's ``RLHFDataset`` that gives each validation row its own number of
  samples (``__rollout_n__``, read by verl's agent loop) from ``data.asym_val_n``: Avg@5 for
  MATH-500 and OlympiadBench, Avg@10 for AIME and AMC (spec section 6) in one validation pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import transfer_queue as tq
from verl.protocol import DataProto
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.debug import marked_timer
from verl.workers.utils.padding import response_from_nested

from backends.verl.adapter import (VERL_ESTIMATOR_NAME, export_schedule_state, last_alphas, read_asym_config,
                                   restore_schedule_state, rollout_inputs, schedule_inputs, training_step,
                                   variant_inputs)
from backends.verl.cpu import PLATFORM_NAME as CPU_ROLLOUT_NAME
from backends.verl.diagnostics import batch_diagnostics, logp_gain_correct, verl_key
from backends.verl.execution import LOGGED_THROUGH_ENV
from backends.verl.render import LOGP_GAIN_EVERY_KEY, TRAINER_MODE
from common import metric_names as names

ROLLOUT_N_KEY = "__rollout_n__"  # verl.trainer.ppo.v1.agent_loop_tq: per-row n
LOGP_GAIN_TIMER = "asym_logp_gain"  # verl reports it as timing_s/asym_logp_gain
SCHEDULE_STATE_FILE = "asym_schedule_state.json"  # the alpha schedule's state, beside verl's checkpoint


def diagnostic_fields(config) -> list[str]:
    """TransferQueue fields the diagnostics read; ``entropy`` exists unless log-probs are bypassed."""
    fields = ["uid", "response_mask", "rm_scores", "old_log_probs", "advantages"]
    correction = config.algorithm.get("rollout_correction", None)
    if not (correction and correction.get("bypass_mode", False)):
        fields.append("entropy")  # written by _compute_old_log_prob (calculate_entropy=True)
    return fields


def batch_from_transfer_queue(batch_meta, fields: list[str], data=None) -> tuple[DataProto, np.ndarray]:
    """The batch as verl's own ``_compute_advantage`` builds it, plus the padding flags (``data``:
    those fields already fetched)."""
    if data is None:
        data = tq.kv_batch_get(keys=batch_meta.keys, partition_id=batch_meta.partition_id, select_fields=fields)
    proto = DataProto(batch=data.to_padded_tensor())
    proto.non_tensor_batch["uid"] = np.array(proto.batch.pop("uid").tolist(), dtype=object)
    is_padding = np.array([bool(tag.get("is_padding", False)) for tag in batch_meta.tags], dtype=bool)
    return proto, is_padding


def estimator_inputs(config) -> tuple[str, ...]:
    """verl fields our ``asym_grpo`` variant reads besides rewards (none for verl's own estimators)."""
    if config.algorithm.get("adv_estimator", None) != VERL_ESTIMATOR_NAME:
        return ()
    variant, _, _ = read_asym_config(config.algorithm)
    return tuple(dict.fromkeys(variant_inputs(variant) + schedule_inputs(config.algorithm)))  # + the schedule's


def logp_gain_every(config) -> int:
    """Steps between log-prob-gain passes (0: none)."""
    return int(config.trainer.get(LOGP_GAIN_EVERY_KEY, 0) or 0)


VERL_SYNC_MODE = "sync"
# verl 0.9.1's replay buffer polls for finished rollouts every 2 s (ReplayBuffer's poll_interval, not
# in its config): a CPU step's rollout takes a fraction of that, so the step waits for the poll. With
# our CPU rollout we poll every CPU_REPLAY_POLL_S [ours]; ASYM_REPLAY_POLL_S overrides (benchmarks).
CPU_REPLAY_POLL_S = 0.05
REPLAY_POLL_ENV = "ASYM_REPLAY_POLL_S"


def replay_poll_s(config, environ=os.environ) -> float | None:
    """Seconds between the replay buffer's polls, or None for verl's own (GPU runs)."""
    if environ.get(REPLAY_POLL_ENV):
        return float(environ[REPLAY_POLL_ENV])
    return CPU_REPLAY_POLL_S if config.actor_rollout_ref.rollout.name == CPU_ROLLOUT_NAME else None


class LoggedOnce:
    """verl's ``Tracking`` without the steps an earlier attempt of the trial logged (<= ``through``).

    A resumed verl run re-validates at its checkpoint's step and re-runs the steps after it; both
    were logged before the attempt died (to MLflow by verl's own logger and to the metrics file).
    A step the dead attempt never logged (its checkpoint came before its log call) is logged now.
    """

    def __init__(self, tracking, through: int):
        self._tracking, self.through = tracking, through

    def log(self, data, step, *args, **kwargs):
        if step <= self.through:
            return None
        return self._tracking.log(data, step, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tracking, name)


def logged_through_step(environ=os.environ) -> int:
    return int(environ.get(LOGGED_THROUGH_ENV, "-1") or -1)


@register_trainer(TRAINER_MODE)
class AsymPPOTrainer(PPOTrainerSync):
    """verl's synchronous PPO trainer plus the paper's per-step diagnostics.

    verl's base trainer tests ``self.trainer_mode == "sync"`` (replay buffer, prompt refill,
    checkpoint layout) and treats every other name as asynchronous, so under our registered name the
    instance reports verl's ``sync`` mode: it is selected as ``asym_sync`` and behaves as ``sync``.
    """

    @property
    def trainer_mode(self) -> str:
        return VERL_SYNC_MODE

    @property
    def logger(self):
        return self._asym_logger

    @logger.setter
    def logger(self, tracking) -> None:  # verl's fit() builds its Tracking and assigns it here
        self._asym_logger = LoggedOnce(tracking, logged_through_step())

    @trainer_mode.setter
    def trainer_mode(self, selected: str) -> None:  # PPOTrainer.__init__ assigns the config's name
        if selected not in (TRAINER_MODE, VERL_SYNC_MODE):
            raise ValueError(f"AsymPPOTrainer runs as trainer.v1.trainer_mode={TRAINER_MODE}, got {selected!r}")

    def _load_checkpoint(self):
        super()._load_checkpoint()
        if self.global_steps:  # verl logs this at INFO only; the trial's log should say it
            print(f"asym: resumed from the checkpoint of step {self.global_steps} in "
                  f"{self.config.trainer.default_local_dir}", flush=True)
            saved = self._schedule_state_path()
            if saved.exists():  # the alpha schedule continues where the checkpoint left it
                restore_schedule_state(json.loads(saved.read_text()))

    def _save_checkpoint(self):
        state = export_schedule_state()
        if state:  # written before verl's own files: its step tracker, written last, marks both complete
            path = self._schedule_state_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(state))
        super()._save_checkpoint()

    def _schedule_state_path(self) -> Path:
        return Path(self.config.trainer.default_local_dir) / f"global_step_{self.global_steps}" / SCHEDULE_STATE_FILE

    def on_init_end(self):
        super().on_init_end()
        poll = replay_poll_s(self.config)
        if poll is not None:
            self.replay_buffer.poll_interval = poll

    def _consume_sync_metrics(self) -> dict:
        """verl's weight-sync metrics of the step; with our CPU rollout also how far the synced
        weights have moved from the base model (the CPU tests' proof that verl's update trained)."""
        metrics = super()._consume_sync_metrics()
        if self.config.actor_rollout_ref.rollout.name == CPU_ROLLOUT_NAME:
            from backends.verl.cpu.rollout import served_weight_metrics  # deferred: ray

            metrics.update(served_weight_metrics())
        return metrics

    def _step_once(self, metrics: dict, timing_raw: dict, sample_batch_size: int):
        batch = super()._step_once(metrics, timing_raw, sample_batch_size)
        every = logp_gain_every(self.config)
        updated = self.config.trainer.critic_warmup <= self.global_steps  # verl's own condition
        if every and updated and self.global_steps % every == 0:
            with marked_timer(LOGP_GAIN_TIMER, timing_raw, color="purple"):
                metrics.update(self._logp_gain_correct(batch))
        return batch

    def _logp_gain_correct(self, batch) -> dict[str, float]:
        """One forward of the batch with the updated actor (as ``_compute_ref_log_prob`` runs one)."""
        saved = dict(batch.extra_info)
        batch.extra_info.update({"calculate_entropy": False, "compute_loss": False,
                                 "temperature": self.config.actor_rollout_ref.rollout.temperature})
        try:
            self.actor_rollout_wg.compute_log_prob(batch)  # writes log_probs; old_log_probs stay
        finally:
            batch.extra_info.clear()
            batch.extra_info.update(saved)
        fields = ["uid", "response_mask", "rm_scores", "old_log_probs", "log_probs"]
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        data["new_log_probs"] = response_from_nested(data.pop("log_probs"), data["response_mask"])
        proto, is_padding = batch_from_transfer_queue(batch, fields, data=data)
        return logp_gain_correct(proto, proto.batch["new_log_probs"], is_padding)

    def _compute_advantage(self, batch, metrics: dict):
        needed = estimator_inputs(self.config)
        with training_step(self.global_steps):  # the alpha schedule's step
            if needed:
                data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(needed))
                tensors = data.to_padded_tensor()  # same keys, same rows and padding as verl's own fetch
                with rollout_inputs(**{name: tensors[name] for name in needed}):
                    batch = super()._compute_advantage(batch, metrics=metrics)
            else:
                batch = super()._compute_advantage(batch, metrics=metrics)
        if self.config.algorithm.get("adv_estimator", None) == VERL_ESTIMATOR_NAME:  # the alphas this step used
            alphas = last_alphas()
            metrics.update({verl_key(names.ALPHA_POS): alphas["alpha_pos"],
                            verl_key(names.ALPHA_NEG): alphas["alpha_neg"]})
        proto, is_padding = batch_from_transfer_queue(batch, diagnostic_fields(self.config))
        metrics.update(batch_diagnostics(proto, is_padding))
        return batch


class AsymRLDataset(RLHFDataset):
    """verl's dataset; validation rows of a benchmark in ``data.asym_val_n`` carry their own n."""

    def __getitem__(self, item):
        row = super().__getitem__(item)
        n = (self.config.get("asym_val_n") or {}).get(str(row.get("data_source")))
        if n is not None:
            row[ROLLOUT_N_KEY] = int(n)
        return row
