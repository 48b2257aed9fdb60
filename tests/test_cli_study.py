"""`asym study list|show` through the installed entry point (.venv/bin/asym): exit codes, tables, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ASYM = str(Path(sys.executable).with_name("asym"))


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([ASYM, *args], capture_output=True, text=True, timeout=120, env=env)


def test_study_list_table_and_json():
    out = run("study", "list")
    assert out.returncode == 0, out.stderr
    for name in ("isolation", "flip", "grid", "main", "backbones", "kappa"):
        assert name in out.stdout
    rows = json.loads(run("study", "list", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["main"]["methods"] == 9 and by_name["grid"]["methods"] == 36
    assert by_name["backbones"]["models"]["verl"] == ["qwen2.5-7b-base", "qwen2.5-math-1.5b"]
    assert by_name["kappa"]["default_steps"] == 20


def test_study_show_json_on_verl():
    out = run("study", "show", "main", "--backend", "verl", "--json")
    assert out.returncode == 0, out.stderr
    desc = json.loads(out.stdout)
    methods = {m["label"]: m for m in desc["methods"]}
    assert methods["Clip-higher"]["clip_high"] == 0.28
    assert (methods["AsymGRPO (0.9, 0.4)"]["alpha_pos"], methods["AsymGRPO (0.9, 0.4)"]["alpha_neg"]) == (0.9, 0.4)
    assert "[v1*" in methods["AsymGRPO (0.9, 0.4)"]["source"]
    assert [t["seed"] for t in desc["trials"]] == [0] * 9
    assert {t["model"] for t in desc["trials"]} == {"qwen3-4b"}


def test_study_show_table_on_embedded():
    out = run("study", "show", "isolation")
    assert out.returncode == 0, out.stderr
    for text in ("Pos-Only", "pos-only-ap0.5-s0", "reinforce-ent0.01-s0", "[v1*]", "[NF]"):
        assert text in out.stdout


@pytest.mark.parametrize("args, message", [
    (("study", "show", "nope"), "error: unknown study 'nope'; known: isolation, flip, grid, main, backbones, kappa, kappa-flip, comparators, schedules"),
])
def test_unknown_study_is_a_one_line_error(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert out.stderr.strip() == message
    assert out.stdout == ""
