"""One real smoke sweep against a real `mlflow server`, checked three ways:

- the tracking server goes down for 20 s mid-sweep and comes back on the same address: the sweep
  finishes and every step of every trial is in MLflow exactly once;
- the MLflow UI, rendered by headless Chromium, opens on the training runs and shows each trial by
  name with its configuration as columns; the sweep's run carries its description (the PNG is
  kept under tests/artifacts/ for a look, the README's screenshot is made the same way);
- the tracking URI's user:password and a token in the environment reach no param, tag, log file,
  report or console line.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import tracking
from experiments import tracking_names as names
from common.net import free_port
from orchestrator.mlflow_server import LocalServer

from asym_process import finish, steps_exactly_once, wait_for  # noqa: E402  (tests/ is on sys.path)

PASSWORD, TOKEN = "pw-9f8e7d6c5b", "tok-1a2b3c4d5e6f"
SWEEP = "ui"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=20000"]
OUTAGE_S = 10
# long enough that the outage falls inside training (a smoke step is ~0.1 s on 2 cores), not after it
STEPS = 120


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The page's visible text after its JS ran (``--dump-dom``), and a PNG when asked."""
    base = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    if screenshot is not None:
        subprocess.run([*base, "--window-size=1800,700", f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=120, check=True)
    # wide: the runs table renders only the columns in view
    dom = subprocess.run([*base, "--window-size=3000,900", "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


@pytest.mark.slow
def test_outage_ui_and_no_secrets(tmp_path):
    store, artifacts = f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", (tmp_path / "server" / "artifacts").as_uri()
    port = free_port()
    server = LocalServer.start(store, artifacts, tmp_path / "server" / "server.log", port=port)
    work = tmp_path / "work"
    work.mkdir()
    try:
        server.wait_ready()
        uri = f"http://asym-user:{PASSWORD}@127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
        env.update(MLFLOW_TRACKING_URI=uri, MLFLOW_TRACKING_TOKEN=TOKEN, HF_TOKEN=TOKEN)
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "sweep", "grid", "--alpha-pos", "0.5,0.9",
                                 "--alpha-neg", "0.4", "--seeds", "0", "--smoke", "--steps", str(STEPS), "--name", SWEEP,
                                 "--max-concurrent", "2"], cwd=work, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        client = tracking.make_client(server.uri)

        def logging_started() -> bool:
            exp = client.get_experiment_by_name(names.experiment_name())
            runs = client.search_runs([exp.experiment_id], f"tags.`{names.TAG_KIND}` = 'trial'") if exp else []
            return any(client.get_metric_history(r.info.run_id, "train/entropy") for r in runs)

        try:
            wait_for(logging_started, 240, "the trials to log a step", proc, every=0.3)
            server.stop()  # the tracking server goes away mid-sweep ...
            time.sleep(OUTAGE_S)
            if proc.poll() is not None:
                pytest.fail("the sweep ended while its tracking server was down:\n" + proc.communicate()[1][-3000:])
            server = LocalServer.start(store, artifacts, tmp_path / "server" / "server.log", port=port)  # ... and comes back
            code, err = finish(proc, timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert code == 0, err[-3000:]
        assert "2/2 trials done" in err

        exp = client.get_experiment_by_name(names.experiment_name())
        trials = client.search_runs([exp.experiment_id], f"tags.`{names.TAG_KIND}` = 'trial'")
        assert len(trials) == 2
        for run in trials:
            assert run.info.status == "FINISHED"
            steps_exactly_once(client, run, STEPS)
        (parent,) = client.search_runs([exp.experiment_id], f"tags.`{names.TAG_KIND}` = 'sweep'")
        note = parent.data.tags[names.NOTE]
        assert "study `grid`, 2 trials (2 finished); sweep finished" in note and "AsymGRPO (0.5, 0.4) s0 | FINISHED" in note
        assert exp.tags[names.EXPERIMENT_KIND] == names.KIND_MODEL_TRAINING

        report = subprocess.run([sys.executable, "-m", "orchestrator.cli", "report", SWEEP, "--no-mlflow"], cwd=work,
                                env=env, capture_output=True, text=True, timeout=300)
        assert report.returncode == 0, report.stderr[-2000:]
        assert "***@127.0.0.1" in (work / "reports" / SWEEP / "report.html").read_text()

        # --- no secret anywhere a user or a log reader could see it ---
        seen = [err, report.stdout, report.stderr, str(exp.tags)]
        for run in client.search_runs([exp.experiment_id], ""):
            seen += [str(run.data.params), str(run.data.tags), run.info.run_name]
        files = [p for p in (*work.rglob("*"), *(tmp_path / "server").rglob("*")) if p.is_file()]
        assert any(p.suffix == ".log" for p in files) and any(p.name == "report.html" for p in files)
        for secret in (PASSWORD, TOKEN):
            leaks = [text[max(0, text.find(secret) - 300): text.find(secret) + 50] for text in seen if secret in text]
            assert not leaks, leaks
            assert not [p for p in files if secret.encode() in p.read_bytes()], secret

        # --- the UI a user opens ---
        if chromium() is None:
            pytest.skip("chromium is not installed (.ci/run installs it); the UI was not rendered")
        view = tracking.trials_view_url(server.uri, exp.experiment_id)
        shot = Path(__file__).parent / "artifacts" / "mlflow-ui-trials.png"
        shot.parent.mkdir(exist_ok=True)
        text = render(view, tmp_path / "chromium", screenshot=shot)
        assert shot.stat().st_size > 30_000
        assert "Model training" in text and "Group: ui" in text, text[:2000]
        for expected in ("AsymGRPO (0.5, 0.4) s0", "AsymGRPO (0.9, 0.4) s0",  # run names
                         "alpha_pos", "alpha_neg", "estimator", "label", "model", "seed",  # param columns
                         "eval/mean_accuracy", "train/entropy", "embedded-carry"):
            assert expected in text, f"{expected!r} not in the rendered runs table: {text[:2000]}"
        page = render(f"{server.uri}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}", tmp_path / "chromium2")
        assert "asym sweep ui" in page and "2 finished" in page, page[:2000]
    finally:
        server.stop()
