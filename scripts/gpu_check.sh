#!/usr/bin/env bash
# GPU check for a lent GPU machine (<= 8 minutes, nothing from the network): torch with CUDA and this repo.
#   bash scripts/gpu_check.sh            # from the repository root
# 1. every estimator and diagnostic on CUDA tensors vs the same inputs on the CPU (must match);
# 2. the embedded engine (tinyrlvr) for a few smoke steps with device=cuda (metrics must be finite);
# 3. where verl is importable (`pip install -e '.[verl]'` or '.[gpu]'): a 2-step verl trial of cpu-tiny
#    on one GPU (verl's FSDP2 actor on CUDA) served by the project's own rollout replica
#    (backends/verl/cpu/rollout.py), so no vLLM is needed; skipped with a note without verl.
# Prints one table and a line per part; exits non-zero on any mismatch or failure.
# ASYM_GPU_CHECK_DEVICE=cpu is the self-test on a machine without a GPU (CI: tests/test_gpu_check.py):
# parts 1-2 with "cpu" in place of "cuda", and part 3 plans, renders and composes the same GPU trial
# against verl's own Hydra config and validate_config without running it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"  # PYTHON=... to choose another
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export ASYM_CACHE_DIR="${ASYM_CACHE_DIR:-$(mktemp -d /tmp/asym-gpu-check.XXXXXX)}"
echo "python: $PYTHON"
timeout "${GPU_CHECK_TIMEOUT:-180}" "$PYTHON" - <<'PY'
import math, os, sys, time

import torch

DEVICE = os.environ.get("ASYM_GPU_CHECK_DEVICE", "cuda")
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuda available: {torch.cuda.is_available()}")
if DEVICE == "cuda" and not torch.cuda.is_available():
    print("FAIL: no CUDA device visible to torch")
    sys.exit(2)
dev = torch.device(DEVICE)
if DEVICE == "cuda":
    print(f"device: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)")
else:
    print(f"SELF-TEST on {DEVICE}: compares the CPU with itself")

from estimators import ESTIMATORS, broadcast_to_tokens
from estimators import diagnostics as diag

rows = []  # (check, detail, max_abs_diff or None, ok, seconds)
failed = False


def record(check, detail, diff, ok, seconds=float("nan")):
    global failed
    failed |= not ok
    rows.append((check, detail, diff, ok, seconds))


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed_cuda(fn):
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t


def close(a, b, tol=1e-5):
    a, b = torch.as_tensor(a, dtype=torch.float64).cpu(), torch.as_tensor(b, dtype=torch.float64).cpu()
    if a.shape != b.shape:
        return float("inf"), False
    both_nan = torch.isnan(a) & torch.isnan(b)
    diff = (a - b).abs().masked_fill(both_nan, 0.0)
    worst = float(diff.max()) if diff.numel() else 0.0
    return worst, bool(worst <= tol * max(1.0, float(a.abs().nan_to_num().max()) if a.numel() else 1.0))


gen = torch.Generator().manual_seed(0)
G, groups, T = 8, 1024, 256
ids_cpu = torch.arange(groups).repeat_interleave(G)[torch.randperm(groups * G, generator=gen)]  # shuffled groups
p_true = torch.rand(groups, generator=gen)[ids_cpu]
rewards_cpu = (torch.rand(groups * G, generator=gen) < p_true).float()
rewards_cpu[ids_cpu < 8] = 0.0  # some all-wrong groups
rewards_cpu[(ids_cpu >= 8) & (ids_cpu < 16)] = 1.0  # some all-correct groups
lengths = torch.randint(1, T + 1, (groups * G,), generator=gen)
mask_cpu = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float()
logp_cpu = -torch.rand(groups * G, T, generator=gen) * 4 * mask_cpu
rewards, ids, mask, logp = (x.to(dev) for x in (rewards_cpu, ids_cpu, mask_cpu, logp_cpu))

seq_cpu = diag.sequence_mean_logprob(logp_cpu, mask_cpu)  # the old-policy input some estimators read
extra_cpu, extra = {"seq_logprob": seq_cpu}, {"seq_logprob": seq_cpu.to(dev)}
for name, est in ESTIMATORS.items():
    a_cpu = est(rewards_cpu, ids_cpu, **{k: extra_cpu[k] for k in est.inputs})
    a_gpu, sec = timed_cuda(lambda: est(rewards, ids, **{k: extra[k] for k in est.inputs}))
    diff, ok = close(a_cpu, a_gpu)
    ok = ok and bool(torch.isfinite(a_gpu).all()) and a_gpu.device.type == DEVICE
    record("estimator", name, diff, ok, sec)
    tok_cpu, tok_gpu = broadcast_to_tokens(a_cpu, mask_cpu), broadcast_to_tokens(a_gpu, mask)
    diff, ok = close(tok_cpu, tok_gpu)
    record("broadcast_to_tokens", name, diff, ok)

asym = ESTIMATORS["asym"]
adv_cpu, adv_gpu = asym(rewards_cpu, ids_cpu, 0.9, 0.4), asym(rewards, ids, 0.9, 0.4)
checks = {
    "solve_fractions": (lambda r, i, m, l, a: diag.solve_fractions(r, i)),
    "advantage_mass": (lambda r, i, m, l, a: diag.advantage_mass(r, a)),
    "kappa (App E)": (lambda r, i, m, l, a: diag.kappa(r, i, diag.sequence_mean_logprob(l, m))),
    "sequence_mean_logprob": (lambda r, i, m, l, a: diag.sequence_mean_logprob(l, m)),
    "masked_mean": (lambda r, i, m, l, a: diag.masked_mean(l, m)),
}
for name, fn in checks.items():
    want = fn(rewards_cpu, ids_cpu, mask_cpu, logp_cpu, adv_cpu)
    got, sec = timed_cuda(lambda: fn(rewards, ids, mask, logp, adv_gpu))
    diff, ok = close(want, torch.as_tensor(got).cpu() if isinstance(got, torch.Tensor) else got)
    record("diagnostic", name, diff, ok, sec)
logits_cpu = torch.randn(64, 128, 512, generator=gen)
h_cpu = diag.token_entropy(logits_cpu)
h_gpu, sec = timed_cuda(lambda: diag.token_entropy(logits_cpu.to(dev)))
diff, ok = close(h_cpu, h_gpu, tol=1e-4)
record("diagnostic", "token_entropy (eq 7)", diff, ok, sec)

# the embedded engine on CUDA: a few smoke steps
try:
    from tinyrlvr.config import SMOKE_OVERRIDES, EngineConfig
    from tinyrlvr.trainer import train

    cfg = EngineConfig.create(estimator="asym", alpha_pos=0.9, alpha_neg=0.4, steps=3, device=DEVICE,
                              cache_dir=os.environ["ASYM_CACHE_DIR"], **SMOKE_OVERRIDES)
    steps = []
    t = time.perf_counter()
    train(cfg, lambda step, metrics: steps.append((step, dict(metrics))))
    sec = time.perf_counter() - t
    last = steps[-1][1] if steps else {}
    finite = all(math.isfinite(float(last.get(k, float("nan")))) for k in ("train/entropy", "train/reward_mean"))
    ok = [s for s, _ in steps][-1:] == [3] and finite
    record(f"tinyrlvr on {DEVICE}", f"{len(steps)} reports, entropy {last.get('train/entropy', float('nan')):.3f}", None, ok, sec)
except Exception as exc:  # keep the table: the failure is one of its rows
    record(f"tinyrlvr on {DEVICE}", f"{type(exc).__name__}: {exc}"[:70], None, False)

print()
print(f"{'check':<22} {'what':<40} {'max |cpu-cuda|':>15} {'cuda s':>9}  result")
print("-" * 98)
for check, detail, diff, ok, sec in rows:
    d = "-" if diff is None else f"{diff:.2e}"
    s = "-" if sec != sec else f"{sec:.4f}"
    print(f"{check:<22} {detail:<40} {d:>15} {s:>9}  {'ok' if ok else 'MISMATCH'}")
print("-" * 98)
print("GPU CHECK:", "FAILED" if failed else "PASSED", f"({sum(not r[3] for r in rows)} of {len(rows)} checks failed)")
sys.exit(1 if failed else 0)
PY

# 3. verl's real trainer on CUDA: cpu-tiny's model and task, our rollout replica, one GPU.
if ! "$PYTHON" -c "import verl" >/dev/null 2>&1; then
  echo "VERL GPU CHECK: SKIPPED (verl not importable: pip install -e '.[verl]' or '.[gpu]')"
  exit 0
fi
WORK="$(mktemp -d /tmp/asym-gpu-verl.XXXXXX)"
printf 'cpu-tiny:\n  device: cuda\n  rollout_name: asym_cpu\n  attn_implementation: sdpa\n' > "$WORK/cuda.yaml"
ARGS=(sweep grid --backend verl --model cpu-tiny --alpha-pos 1 --alpha-neg 0.5 --steps 2 --gpus-per-trial 1
      --config "$WORK/cuda.yaml" --name gpu-verl)
if [ "${ASYM_GPU_CHECK_DEVICE:-cuda}" = cuda ]; then
  echo "verl trial on CUDA in $WORK"
  (cd "$WORK" && timeout "${GPU_CHECK_VERL_TIMEOUT:-300}" "$PYTHON" -m orchestrator.cli "${ARGS[@]}") \
    || { echo "VERL GPU CHECK: FAILED (logs: $WORK/.asym/trials/gpu-verl)"; exit 1; }
  echo "VERL GPU CHECK: PASSED"
else
  (cd "$WORK" && "$PYTHON" -m orchestrator.cli "${ARGS[@]}" --dry-run --json > plan.json)
  "$PYTHON" - "$WORK/plan.json" <<'PY' || { echo "VERL GPU CHECK: FAILED (self-test)"; exit 1; }
import json, sys

from backends.verl.entry import compose_config, validate

(trial,) = json.load(open(sys.argv[1]))
config = compose_config(trial["overrides"])
validate(config)
got = (config.actor_rollout_ref.rollout.name, config.trainer.device, config.trainer.n_gpus_per_node)
assert got == ("asym_cpu", "cuda", 1), got
print(f"SELF-TEST: the GPU trial renders and composes (rollout {got[0]}, device {got[1]}, {got[2]} GPU); not run")
PY
  echo "VERL GPU CHECK: PASSED (self-test: planned and composed, not run)"
fi
