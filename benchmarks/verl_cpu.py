"""verl's real trainer on a CPU (``cpu-tiny``) next to the embedded engine on the same model and batch.

    python -m benchmarks.verl_cpu [--steps 5]

One run measures both: (1) one verl trial through our entry point (verl's ``main_ppo``, private Ray,
CPU mode), its start-up (process start -> first training step logged) and seconds per training step
(verl's own ``timing_s/step``: rollout, reward, log-probs, advantages, FSDP2 update, weight sync);
(2) the embedded engine's ``rl_step`` on the same base model with the same batch (4 prompts x 4
rollouts, one optimizer step, 8 new tokens at most), one thread. Prints the side-by-side ratio, and
the cost of our log-prob-gain pass (``timing_s/asym_logp_gain``, one actor forward after the update
for ``train/logp_gain_correct``) beside verl's own phases of the same steps.
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


def verl_trial(steps: int, workdir: Path) -> dict:
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
    metrics = workdir / "metrics.jsonl"
    env = {**os.environ, **verl_runtime_env_vars(), **cpu_env(), "VERL_FILE_LOGGER_PATH": str(metrics),
           "PYTHONPATH": str(PROJECT_ROOT)}
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
            "phases": {name: timer(f"timing_s/{name}") for name in PHASES}}


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asym-verl-cpu-bench-") as tmp:
        verl = verl_trial(args.steps, Path(tmp))
    embedded = embedded_steps(args.steps)
    v, e = statistics.median(verl["step_s"]), statistics.median(embedded)
    print(f"machine: {os.cpu_count()} CPUs; batch 4 prompts x 4 rollouts, <= 8 new tokens, GPT-2-shaped "
          f"2 layers x 64 (the embedded smoke base model)")
    print("| | start-up (s) | s / step (median) | steps |")
    print("|---|---|---|---|")
    print(f"| verl 0.9.1 main_ppo, CPU mode | {verl['startup_s']:.1f} | {v:.3f} | {len(verl['step_s'])} |")
    print(f"| embedded engine (tinyrlvr) | - | {e:.4f} | {len(embedded)} |")
    print(f"verl / embedded per step: {v / e:.0f}x; verl trial wall {verl['wall_s']:.1f} s")
    print("verl's timers per step (median s; share of timing_s/step), in the same steps:")
    for name, values in verl["phases"].items():
        if values:
            print(f"  {name}: {statistics.median(values):.3f} s ({statistics.median(values) / v:.1%})")
    gain, update = verl["phases"]["asym_logp_gain"], verl["phases"]["old_log_prob"]
    if gain and update:
        print(f"log-prob-gain pass / verl's old-log-prob pass: {statistics.median(gain) / statistics.median(update):.2f}x")


if __name__ == "__main__":
    main()
