"""Every malformed input the CLI refuses (the README's table): one `error: ...` line on stderr,
exit code 2, and nothing written: the working directory is unchanged (no ./.asym, no store).

In-process (``orchestrator.cli.main``) so that 60 cases take seconds; the subprocess path is the
same function (tests/test_tracking.py runs it as a subprocess).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from refusal import assert_refused  # noqa: E402  (tests/ is on sys.path under pytest)

DOWN = "http://127.0.0.1:9"  # port 9 (discard): nothing listens there
# (argv, environment, what the one line says)
CASES = [
    # alpha lists
    ('sweep grid --alpha-pos "" --dry-run', {}, "--alpha-pos needs comma-separated numbers"),
    ("sweep grid --alpha-pos 0.5,,0.9 --dry-run", {}, "--alpha-pos needs comma-separated numbers"),
    ("sweep grid --alpha-pos a,b --dry-run", {}, "'a' is not a number"),
    ("sweep grid --alpha-pos nan --dry-run", {}, "values must be finite"),
    ("sweep grid --alpha-pos inf --dry-run", {}, "values must be finite"),
    ("sweep grid --alpha-neg 1e999 --dry-run", {}, "values must be finite"),
    ("sweep grid --alpha-pos -0.5 --dry-run", {}, "values must be >= 0"),
    ("sweep grid --alpha-pos 0.5,0.5 --dry-run", {}, "0.5 is listed twice"),
    ("sweep optuna --alpha-pos-range 1,0 --dry-run", {}, "two increasing numbers"),
    ("sweep optuna --alpha-neg-range 0,1,2 --dry-run", {}, "two increasing numbers"),
    ("sweep optuna --trials 0 --dry-run", {}, "--trials must be >= 1"),
    ("sweep optuna --seeds 0,1 --dry-run", {}, "a search plans one trial per sample"),
    # seeds
    ('sweep isolation --seeds "" --dry-run', {}, "--seeds needs comma-separated integers"),
    ("sweep isolation --seeds -1 --dry-run", {}, "seeds must be >= 0"),
    ("sweep isolation --seeds 0,0 --dry-run", {}, "seed 0 is listed twice"),
    ("sweep isolation --seeds x --dry-run", {}, "'x' is not an integer"),
    ("sweep isolation --seeds 1.5 --dry-run", {}, "'1.5' is not an integer"),
    ("train --estimator grpo --steps 2 --seed -1", {}, "--seed must be >= 0"),
    # names
    ("sweep isolation --name ../x --dry-run", {}, "may only use letters, digits"),
    ("sweep isolation --name .hidden --dry-run", {}, "may only use letters, digits"),
    ('sweep isolation --name "a b" --dry-run', {}, "may only use letters, digits"),
    ('sweep isolation --name "" --dry-run', {}, "may only use letters, digits"),
    ("sweep resume ../etc", {}, "may only use letters, digits"),
    ("sweep resume nope", {}, "no sweep named 'nope'"),
    ("sweep nosuchstudy --dry-run", {}, "unknown study 'nosuchstudy'"),
    ("sweep isolation --model nosuch --dry-run", {}, "unknown model 'nosuch'"),
    ("train --estimator nosuch --steps 2", {}, "unknown estimator 'nosuch'"),
    ("report nope", {}, "no tracking store at"),
    # study / config files
    ("sweep isolation --config missing.yaml --dry-run", {}, "config file missing.yaml does not exist"),
    ("sweep isolation --config bad.yaml --dry-run", {}, "bad.yaml:2: not valid YAML"),
    ("sweep isolation --config unknown.yaml --dry-run", {}, "unknown key 'not_a_setting'"),
    ("sweep isolation --config list.yaml --dry-run", {}, "must be a mapping"),
    ("sweep isolation --config adir --dry-run", {}, "cannot read config file adir"),
    ("sweep grid --set eval_pass_k=32 --dry-run", {}, "eval_pass_k (32) must not exceed eval_pass_samples (16)"),
    ("sweep isolation --set policy_loss=nope --dry-run", {},
     "--set policy_loss=nope: unknown policy_loss 'nope'; known: vanilla, clip_cov, kl_cov"),
    # cluster files
    ("sweep isolation --cluster missing.yaml", {}, "cluster file missing.yaml does not exist"),
    ("sweep isolation --cluster bad.yaml", {}, "not valid YAML"),
    ("sweep isolation --cluster cluster-bad.yaml", {}, "required field is missing"),
    ("cluster up missing.yaml", {}, "cluster file missing.yaml does not exist"),
    ("cluster down bad.yaml", {}, "not valid YAML"),
    ("sweep isolation --cluster a.yaml --address 1.2.3.4:6379", {}, "not both"),
    # tracking URIs
    ("sweep isolation --smoke", {"MLFLOW_TRACKING_URI": DOWN}, "is not reachable"),
    ("train --estimator grpo --steps 2 --smoke", {"MLFLOW_TRACKING_URI": DOWN}, "is not reachable"),
    ("sweep isolation --smoke", {"MLFLOW_TRACKING_URI": "http://u:secretpw@127.0.0.1:9"}, "http://***@127.0.0.1:9 is not reachable"),
    ("sweep isolation --smoke", {"MLFLOW_TRACKING_URI": "ftp://example.org/x"}, "unsupported scheme 'ftp'"),
    ("sweep isolation --smoke", {"MLFLOW_TRACKING_URI": "mlflow.db"}, "unsupported scheme"),
    ("sweep isolation --smoke", {"MLFLOW_TRACKING_URI": "http://"}, "has no host"),
    ("sweep isolation --smoke", {"MLFLOW_TRACKING_URI": "sqlite:///no/such/dir/mlflow.db"}, "does not exist"),
    ("report nope --tracking-uri sqlite:///no/such.db", {}, "no tracking store at"),
    # ports and hosts
    ("ui --port 0", {}, "--port must be in 1..65535"),
    ("ui --port 70000", {}, "--port must be in 1..65535"),
    ("ui --port abc", {}, "Invalid value for '--port'"),
    ('ui --host "not a host"', {}, "--host must be an IP address"),
    ("ui", {}, "no MLflow store in"),
    # paths
    ("train --estimator grpo --steps 2 --metrics-out /no/such/dir/m.jsonl", {}, "directory /no/such/dir does not exist"),
    ("train --estimator grpo --steps 2 --metrics-out adir", {}, "is a directory"),
    # other numbers and switches
    ("sweep isolation --steps 0 --dry-run", {}, "--steps must be an integer >= 1"),
    ("train --estimator grpo --steps 0", {}, "--steps must be an integer >= 1"),
    ("sweep isolation --max-concurrent 0 --dry-run", {}, "--max-concurrent must be >= 1"),
    ("sweep isolation --cpus-per-trial 0 --dry-run", {}, "--cpus-per-trial must be > 0"),
    ("sweep isolation --gpus-per-trial -1 --dry-run", {}, "--gpus-per-trial must be >= 0"),
    ("sweep isolation --max-failures -1 --dry-run", {}, "--max-failures must be >= 0"),
    ("sweep isolation --scheduler foo --dry-run", {}, "Invalid value for '--scheduler'"),
    ("sweep isolation --backend nosuch --dry-run", {}, "Invalid value for '--backend'"),
    ("sweep isolation --json", {}, "--json goes with --dry-run"),
    ("report nope --ema 1.5", {}, "--ema must be in [0, 1)"),
    ("report nope --select median", {}, "Invalid value for '--select'"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A working directory holding the malformed files the cases name."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "bad.yaml").write_text("a: [1, 2\n")
    (root / "unknown.yaml").write_text("not_a_setting: 3\n")
    (root / "list.yaml").write_text("- just\n- a list\n")
    (root / "cluster-bad.yaml").write_text("provider: {type: local}\n")
    (root / "adir").mkdir()
    return root


@pytest.mark.parametrize("argv,env,message", CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_refused_with_one_line_and_exit_2_and_nothing_written(argv, env, message, inputs, monkeypatch, capsys):
    monkeypatch.chdir(inputs)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    err = assert_refused(argv, inputs, capsys, message)
    assert "secretpw" not in err
    assert not (inputs / ".asym").exists() and not Path(os.environ.get("HOME", "/nonexistent"), "mlruns").exists()


def test_the_readme_table_lists_every_case():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("<!-- bad-input table -->"):readme.index("<!-- /bad-input table -->")]
    missing = [argv for argv, env, _ in CASES if f"`{_shown(argv, env)}`" not in table]
    assert not missing, missing
    assert len(CASES) >= 30


def _shown(argv: str, env: dict) -> str:
    prefix = " ".join(f"{k}={v}" for k, v in env.items())
    return f"{prefix} asym {argv}".strip().replace("|", "\\|")
