"""verl's real trainer on a CPU (``cpu-tiny``) next to the embedded engine on the same model and batch.

    python -m benchmarks.verl_cpu [--steps 5] [--rollouts today,serial,batched]

One run measures, one after another on the same machine: (1) one verl trial per variant
(``VARIANTS``: ``today``, the state before issue 26: a server taking one request at a time,
verl's 2 s replay-buffer poll, micro-batches of 2x / 3x one sequence's tokens; ``serial``: the same
server with our 0.05 s poll and one micro-batch per pass (``cpu.settings.CPU_TOKEN_BUDGET``);
``batched``: that, with the requests of a step decoded together, left-padded with one KV cache) through our entry point
(verl's ``main_ppo``, private Ray, CPU mode): start-up (process start -> first training step logged)
and seconds per training step (verl's own ``timing_s/step``: rollout, reward, log-probs,
advantages, FSDP2 update, weight sync), and the largest rollout/actor log-prob gap verl measured
(``training/rollout_probs_diff_max``); (2) the embedded engine's ``rl_step`` on the same base model
with the same batch (4 prompts x 4 rollouts, one optimizer step, 8 new tokens at most), one thread.
Prints the side-by-side ratios, and the cost of our log-prob-gain pass (``timing_s/asym_logp_gain``,
one actor forward after the update for ``train/logp_gain_correct``) beside verl's own phases.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


# what each run of the CPU rollout sets: "today" is the state before issue 26 (one request at a time,
# verl's 2 s replay-buffer poll); "serial" isolates the poll; "batched" is the current default
VARIANTS = {"today": {"ASYM_CPU_ROLLOUT": "serial", "ASYM_REPLAY_POLL_S": "2.0"},
            "serial": {"ASYM_CPU_ROLLOUT": "serial"}, "batched": {"ASYM_CPU_ROLLOUT": "batched"}}
# ... and "today" keeps the GPU token budgets per micro-batch (2x / 3x one sequence, render.py)
TODAY_BUDGETS = {"actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 2,
                 "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu": 3}


def verl_trial(steps: int, workdir: Path, rollout: str = "batched") -> dict:
    from experiments.plan import plan
    from backends.verl.cpu.assets import engine_config, ensure_assets
    from backends.verl.cpu.settings import cpu_env
    from backends.verl.execution import PROJECT_ROOT, verl_runtime_env_vars
    from backends.verl.render import default_paths, render_overrides

    ensure_assets(engine_config())
    trial = plan("grid", backend="verl", models=["cpu-tiny"], steps=steps, alpha_pos=[1.0], alpha_neg=[0.5])[0]
    overrides = [o for o in render_overrides(trial, default_paths())
                 if not o.startswith(("trainer.logger", "trainer.test_freq", "trainer.default_local_dir"))]
    overrides += ["trainer.logger=[console,file]", f"trainer.test_freq={steps}",
                  f"trainer.default_local_dir={workdir}/ckpt"]
    if rollout == "today":
        s = trial.settings_dict()
        seq = int(s["max_prompt_length"]) + int(s["max_response_length"])
        overrides = [o for o in overrides if o.split("=", 1)[0] not in TODAY_BUDGETS]
        overrides += [f"{key}={k * seq}" for key, k in TODAY_BUDGETS.items()]
    metrics = workdir / "metrics.jsonl"
    env = {**os.environ, **verl_runtime_env_vars(), **cpu_env(), "VERL_FILE_LOGGER_PATH": str(metrics),
           "PYTHONPATH": str(PROJECT_ROOT), **VARIANTS[rollout]}
    start = time.perf_counter()
    with (workdir / "verl.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "backends.verl.entry", *overrides], env=env,
                                cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        first_step = None
        while proc.poll() is None:
            if first_step is None and metrics.exists() and any(json.loads(l)["step"] >= 1 for l in metrics.read_text().splitlines() if l.strip()):
                first_step = time.perf_counter() - start
            time.sleep(0.2)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"verl exited {proc.returncode}; see {workdir / 'verl.log'}")
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    def timer(name: str) -> list[float]:
        return [r["data"][name] for r in records if r["step"] >= 1 and name in r["data"]]

    step_s = timer("timing_s/step")
    return {"wall_s": wall, "startup_s": (first_step or wall) - step_s[0], "step_s": step_s,
            "phases": {name: timer(f"timing_s/{name}") for name in PHASES},
            "probs_diff_max": max(timer("training/rollout_probs_diff_max") or [float("nan")]),
            "busy_s": timer("asym_cpu/rollout_busy_s"),
            "timers": {k[len("timing_s/"):]: timer(k) for k in sorted({k for r in records if r["step"] >= 1
                                                                       for k in r["data"] if k.startswith("timing_s/")})}}


# verl's per-step timers shown beside our log-prob-gain pass (trainer.asym_logp_gain_every = 1)
PHASES = ("gen", "old_log_prob", "update_actor", "asym_logp_gain")


def embedded_steps(steps: int) -> list[float]:
    import torch

    from backends.verl.cpu.assets import engine_config
    from tinyrlvr.base_model import get_base_model, load_policy
    from tinyrlvr.trainer import rl_step

    cfg = engine_config(prompts_per_step=4, group_size=4, mini_batches=1, estimator="asym", alpha_pos=1.0,
                        alpha_neg=0.5)
    torch.set_num_threads(1)
    policy = load_policy(get_base_model(cfg))
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    out = []
    for step in range(1, steps + 2):
        t = time.perf_counter()
        rl_step(policy, optimizer, cfg, step)
        out.append(time.perf_counter() - t)
    return out[1:]  # the first one warms up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rollouts", default="today,serial,batched", help=f"runs, in order, of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    verl = {}
    for rollout in args.rollouts.split(","):
        with tempfile.TemporaryDirectory(prefix=f"asym-verl-cpu-bench-{rollout}-") as tmp:
            verl[rollout] = verl_trial(args.steps, Path(tmp), rollout)
    embedded = embedded_steps(args.steps)
    e = statistics.median(embedded)
    print(f"machine: {os.cpu_count()} CPUs; batch 4 prompts x 4 rollouts, <= 8 new tokens, GPT-2-shaped "
          f"2 layers x 64 (the embedded smoke base model)")
    print("| | start-up (s) | s / step (median) | `gen` s / step (median) | steps | rollout/actor max prob gap |")
    print("|---|---|---|---|---|---|")
    for rollout, run in verl.items():
        print(f"| verl 0.9.1 main_ppo, CPU mode, {rollout} rollout | {run['startup_s']:.1f} | "
              f"{statistics.median(run['step_s']):.3f} | {statistics.median(run['phases']['gen']):.3f} | "
              f"{len(run['step_s'])} | {run['probs_diff_max']:.2e} |")
    print(f"| embedded engine (tinyrlvr) | - | {e:.4f} | - | {len(embedded)} | - |")
    for rollout, run in verl.items():
        v = statistics.median(run["step_s"])
        print(f"{rollout}: verl / embedded per step {v / e:.0f}x; trial wall {run['wall_s']:.1f} s")
    for old, new in (("today", "batched"), ("today", "serial"), ("serial", "batched")):
        if {old, new} <= set(verl):
            o_step, n_step = (statistics.median(verl[k]["step_s"]) for k in (old, new))
            o_gen, n_gen = (statistics.median(verl[k]["phases"]["gen"]) for k in (old, new))
            print(f"{new} vs {old}: step {o_step / n_step:.2f}x faster, gen {o_gen / n_gen:.2f}x faster")
    for rollout, run in verl.items():
        busy = [b - a for a, b in zip(run["busy_s"], run["busy_s"][1:])]  # cumulative: per-step increments
        print(f"{rollout}: every verl timer (median s): " + ", ".join(
            f"{k} {statistics.median(v):.3f}" for k, v in run["timers"].items() if v)
            + (f"; rollout server decoding per step (median, steps 2+) {statistics.median(busy):.3f} s" if busy else ""))
    for rollout, run in verl.items():
        v = statistics.median(run["step_s"])
        print(f"verl's timers per step, {rollout} rollout (median s; share of timing_s/step):")
        for name, values in run["phases"].items():
            if values:
                print(f"  {name}: {statistics.median(values):.3f} s ({statistics.median(values) / v:.1%})")
        gain, old = run["phases"]["asym_logp_gain"], run["phases"]["old_log_prob"]
        if gain and old:
            print(f"  log-prob-gain pass / verl's old-log-prob pass: {statistics.median(gain) / statistics.median(old):.2f}x")


if __name__ == "__main__":
    main()
