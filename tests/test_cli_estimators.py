"""`asym estimators list | show`: the table, the --json schema of issue 2, --plot, and bad input as
`error: <one line>` with exit code 2 (through the root's main(), and once in a real subprocess)."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app, main

runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, ["estimators", *args], env={"COLUMNS": "160"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_list_shows_every_estimator_with_labels_and_tunable_alphas():
    out = _invoke("list")
    for name, label in [("reinforce", "REINFORCE"), ("grpo", "GRPO"), ("asym", "AsymGRPO"), ("pos-only", "Pos-Only"),
                        ("neg-only", "Neg-Only"), ("ent-decrease", "EntDecrease"), ("ent-increase", "EntIncrease"),
                        ("dr-grpo", "Dr.GRPO")]:
        line = next(line for line in out.splitlines() if f" {name} " in line)
        assert label in line
    asym_line = next(line for line in out.splitlines() if " asym " in line)
    assert "0.9" in asym_line and "0.4" in asym_line and "alpha_pos, alpha_neg" in asym_line


def test_show_json_schema_and_values():
    data = json.loads(_invoke("show", "asym", "--group-size", "8", "--alpha-pos", "0.9", "--alpha-neg", "0.4", "--json"))
    assert list(data) == ["estimator", "group_size", "alpha_pos", "alpha_neg", "rows", "peaks"]
    assert (data["estimator"], data["group_size"], data["alpha_pos"], data["alpha_neg"]) == ("asym", 8, 0.9, 0.4)
    assert [r["k"] for r in data["rows"]] == list(range(9))
    assert all(set(r) == {"k", "p", "pos", "neg"} for r in data["rows"])
    assert data["rows"][0]["pos"] is None and data["rows"][8]["neg"] is None
    assert data["rows"][1]["pos"] == pytest.approx(5.7622, abs=1e-4)
    assert data["rows"][7]["neg"] == pytest.approx(-2.1779, abs=1e-4)
    assert data["rows"][8]["pos"] == 0.0 and data["rows"][0]["neg"] == 0.0
    assert data["peaks"] == {"pos": 0.1, "neg": 0.4}
    reinforce = json.loads(_invoke("show", "reinforce", "--group-size", "4", "--json"))
    assert reinforce["peaks"] == {"pos": None, "neg": None}
    assert [r["pos"] for r in reinforce["rows"]] == [None, 1.0, 1.0, 1.0, 1.0]


def test_show_table_is_human_readable():
    out = _invoke("show", "grpo", "--group-size", "8")
    assert "GRPO" in out and "2.6458" in out and "-2.6458" in out
    assert "W_pos at p=0.500" in out and "W_neg at p=0.500" in out


def test_plot_writes_figure_1_for_several_estimators(tmp_path):
    path = tmp_path / "fig1.png"
    out = _invoke("show", "grpo,asym,reinforce", "--group-size", "8", "--alpha-pos", "0.9", "--plot", str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert "AsymGRPO" in out and "alpha_pos=0.9" in out and "REINFORCE" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "asym", "--alpha-pos", "-0.5"], "alpha_pos must be a finite number >= 0"),
        (["show", "asym", "--alpha-neg", "nan"], "alpha_neg must be a finite number >= 0"),
        (["show", "asym", "--alpha-neg", "inf"], "alpha_neg must be a finite number >= 0"),
        (["show", "grpo", "--group-size", "1"], "group size must be >= 2"),
        (["show", "grpox"], "unknown estimator 'grpox'; known: reinforce, grpo"),
        (["show", "grpo", "--alpha-pos", "0.9"], "estimator 'grpo' fixes alpha_pos=0.5"),
        (["show", "grpo,reinforce", "--alpha-neg", "0.3"], "none of grpo, reinforce takes alpha_neg"),
        (["show", "grpo,asym", "--json"], "--json shows one estimator"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["estimators", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_plot_to_missing_directory_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["estimators", "show", "grpo", "--plot", str(tmp_path / "nope" / "f.png")])
    assert info.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_real_process_exit_code_and_stderr(python_exe, clean_env):
    proc = subprocess.run([python_exe, "-m", "orchestrator.cli", "estimators", "show", "asym", "--alpha-pos", "-1"],
                          capture_output=True, text=True, timeout=120, env=clean_env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: alpha_pos must be a finite number >= 0, got -1.0"]
    assert proc.stdout == ""
