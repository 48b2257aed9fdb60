"""`asym data prepare` on the shipped fixture (tests/fixtures/math) and the math-verify verifier.

Checked: verl's parquet schema as verl's ``RLHFDataset`` reads it back (data_source, chat prompt,
reward_model.ground_truth, extra_info), the answer taken from a MATH solution's last \\boxed{},
all-or-nothing writes and one-line errors; the verifier on hand-made answers (boxed, fractions,
decimals, equivalent forms, wrong and missing answers), also from a worker thread as verl calls it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from backends.verl.data import ALL_SOURCES, INSTRUCTION, last_boxed, prepare
from backends.verl.verifier import compute_score
from orchestrator.cli import app
from common.errors import UserError

FIXTURE = Path(__file__).parent / "fixtures" / "math"


def test_prepare_writes_verl_parquet_from_local_files(tmp_path):
    result = CliRunner().invoke(app, ["data", "prepare", "--out", str(tmp_path), "--from", str(FIXTURE)])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in tmp_path.glob("*.parquet")) == sorted(ALL_SOURCES)
    train = pd.read_parquet(tmp_path / "math_train.parquet")
    assert list(train.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert len(train) == sum(1 for _ in (FIXTURE / "math_train.jsonl").open())
    row = train.iloc[0]
    assert row["data_source"] == "math_train" and row["ability"] == "math"
    assert row["prompt"][0]["role"] == "user" and row["prompt"][0]["content"].endswith(INSTRUCTION)
    assert row["reward_model"] == {"style": "rule", "ground_truth": "\\frac{3}{4}"}
    assert row["extra_info"]["split"] == "train" and row["extra_info"]["index"] == 0
    amc = pd.read_parquet(tmp_path / "amc23.parquet")
    assert amc.iloc[0]["reward_model"]["ground_truth"] == "17"  # 17.0 in the source
    oly = pd.read_parquet(tmp_path / "olympiadbench.parquet")
    assert oly.iloc[0]["reward_model"]["ground_truth"] == "2"  # final_answer is a list
    assert "ASYM_DATA_DIR" in result.output


def test_our_verl_dataset_reads_the_rows_and_sets_avg_at_n_per_benchmark(tmp_path):
    pytest.importorskip("transfer_queue")  # the trainer module imports verl's v1 trainer
    from omegaconf import OmegaConf

    from backends.verl.trainer import ROLLOUT_N_KEY, AsymRLDataset

    prepare(tmp_path, FIXTURE)
    config = OmegaConf.create({"prompt_key": "prompt", "filter_overlong_prompts": False, "cache_dir": str(tmp_path),
                               "asym_val_n": {"math500": 5, "aime24": 10}})
    val = AsymRLDataset([str(tmp_path / "math500.parquet"), str(tmp_path / "aime24.parquet")], None, config)
    rows = [val[i] for i in range(len(val))]
    assert [r["data_source"] for r in rows] == ["math500"] * 3 + ["aime24"] * 2
    assert [r[ROLLOUT_N_KEY] for r in rows] == [5] * 3 + [10] * 2
    assert rows[1]["raw_prompt"][0]["role"] == "user" and rows[1]["reward_model"]["ground_truth"] == "\\frac{1}{4}"
    train = AsymRLDataset(str(tmp_path / "math_train.parquet"), None, config)
    assert ROLLOUT_N_KEY not in train[0]  # training rows keep rollout.n


def test_prepare_is_all_or_nothing_and_says_what_is_wrong(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ALL_SOURCES:
        (src / f"{name}.jsonl").write_text((FIXTURE / f"{name}.jsonl").read_text())
    (src / "aime25.jsonl").write_text(json.dumps({"problem": "x?"}) + "\n")  # no answer
    out = tmp_path / "out"
    with pytest.raises(UserError, match="aime25 row 0 has no answer"):
        prepare(out, src)
    assert not list(out.glob("*.parquet"))  # nothing half-written
    with pytest.raises(UserError, match="is not a folder"):
        prepare(out, tmp_path / "missing")
    (src / "amc23.jsonl").unlink()
    with pytest.raises(UserError, match="has no amc23.jsonl"):
        prepare(out, src, sources=["amc23"])
    result = CliRunner().invoke(app, ["data", "prepare", "--out", str(out), "--from", str(tmp_path / "missing")])
    assert result.exit_code != 0


def test_last_boxed():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{\\{1,2\\}}") == "\\{1,2\\}"
    assert last_boxed("no box") is None and last_boxed("\\boxed{open") is None


@pytest.mark.parametrize("solution,truth,correct", [
    ("So the answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}", True),
    ("\\boxed{0.5}", "\\frac12", True),  # decimal vs fraction
    ("We get \\boxed{\\dfrac{3}{4}}", "3/4", True),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", True),  # equivalent forms
    ("\\boxed{(x+1)^2}", "x^2+2x+1", True),
    ("first \\boxed{3} but finally \\boxed{4}", "4", True),  # the last box counts
    ("\\boxed{(1,2)}", "(1, 2)", True),
    ("\\boxed{17}", "17.0", True),
    ("\\boxed{5}", "6", False),
    ("\\boxed{\\frac{1}{3}}", "0.3", False),
    ("I do not know.", "3", False),
    ("\\boxed{}", "3", False),
    ("\\boxed{3}", "", False),
])
def test_verifier_on_hand_made_answers(solution, truth, correct):
    assert compute_score("math500", solution, truth) == {"score": float(correct), "acc": float(correct)}


def test_verifier_in_a_worker_thread_as_verl_calls_it():
    results = []
    worker = threading.Thread(target=lambda: results.append(compute_score("aime24", "\\boxed{024}", "24")))
    worker.start()
    worker.join(timeout=60)
    assert results == [{"score": 1.0, "acc": 1.0}]
