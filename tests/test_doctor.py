"""`asym doctor` on this CPU machine, for real (subprocesses of the installed CLI): what it reports
here (embedded and verl's CPU mode can run, the vLLM path cannot, and why), with pieces faked absent
(torch and verl shadowed by packages that fail to import, the Hub offline with an empty cache, a
tracking server that does not answer), and the exit codes (0 / 1 by the chosen mode, 2 on bad input).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import doctor


def _asym() -> str:
    local = Path(sys.executable).with_name("asym")
    return str(local) if local.exists() else shutil.which("asym")


def _doctor(args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([_asym(), "doctor", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_needed_check_exists_and_verdicts_name_the_failures():
    needs = doctor.backend_needs()
    assert {"embedded", "verl-cpu", "verl"} <= set(needs)
    checks = [doctor.Check(n, n != "vllm", "d") for n in doctor.CHECKS]
    reasons = doctor.verdicts(checks, needs)
    assert reasons["embedded"] == [] and reasons["verl"] == ["vllm: d"]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU host reports otherwise")
def test_cpu_machine_report_json(tmp_path, clean_env):
    pytest.importorskip("verl")
    env = {**clean_env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_free_port()}"}
    run = _doctor(["--json", "--backend", "verl"], env, tmp_path)
    assert run.returncode == 1, run.stderr  # the chosen mode (vLLM on GPUs) cannot run here
    report = json.loads(run.stdout)
    backends = report["backends"]
    assert backends["embedded"]["can_run"] and backends["verl-cpu"]["can_run"], backends
    why = " ".join(backends["verl"]["reasons"])
    assert "vllm: not installed" in why and "GPUs: no CUDA GPU" in why and "torch CUDA build" in why
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["verl"]["ok"] and checks["verl"]["detail"] == "0.9.1" and checks["verl pins"]["ok"]
    assert not checks["tracking"]["ok"] and "does not answer" in checks["tracking"]["detail"]
    models = checks["preset models"]
    assert not models["ok"] and "qwen3-4b: missing" in models["detail"] and "HF_HUB_OFFLINE=1" in models["detail"]
    assert not (tmp_path / ".asym").exists()  # doctor writes nothing


def test_table_exit_0_when_embedded_can_run(tmp_path, clean_env):
    run = _doctor([], clean_env, tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "can run here" in run.stdout and "embedded" in run.stdout


def test_faked_absent_torch_and_verl(tmp_path, clean_env):
    fake = tmp_path / "fake"
    for package in ("torch", "verl"):
        (fake / package).mkdir(parents=True)
        (fake / package / "__init__.py").write_text(f"raise ImportError('{package} faked absent')\n")
    env = {**clean_env, "PYTHONPATH": f"{fake}:{clean_env.get('PYTHONPATH', '')}".rstrip(":")}
    run = _doctor(["--json"], env, tmp_path)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["chosen"] == "embedded" and not report["ok"]
    assert any("torch: not importable (ImportError: torch faked absent)" in r
               for r in report["backends"]["embedded"]["reasons"]), report["backends"]
    assert any(r.startswith("verl: not importable") for r in report["backends"]["verl-cpu"]["reasons"])


def test_unknown_backend_is_one_line_exit_2(tmp_path, clean_env):
    run = _doctor(["--backend", "nosuch"], clean_env, tmp_path)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: unknown --backend 'nosuch'"), run.stderr
