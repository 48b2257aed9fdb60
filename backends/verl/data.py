"""`asym data prepare`: MATH train (7,500 problems) and the five benchmarks as verl parquet files.

Output: ``<out>/<name>.parquet`` for ``math_train`` and each benchmark of ``BENCHMARK_SOURCES``, in
verl's schema (verl-notes "Data and scoring"):
``data_source`` (the file's name: the benchmark names of the presets' ``val_n``), ``prompt`` (one
user message: the problem and verl's MATH instruction), ``ability``, ``reward_model = {style: rule,
ground_truth}``, ``extra_info = {split, index, question, answer}``.

Inputs: Hugging Face datasets (``HF_SOURCES``) on a machine that reaches the Hub, or local files
(``--from DIR``): ``<name>.jsonl`` / ``.json`` / ``.parquet`` with a ``problem`` (or ``question``)
field and an ``answer`` (or ``final_answer``, or a MATH ``solution`` whose last ``\\boxed{}`` is
the answer). All files are written to a temporary folder first and moved in place together.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from backends.verl.render import TRAIN_SOURCE
from common.errors import UserError, first_line

INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."  # verl's MATH recipe
BENCHMARK_SOURCES = ("math500", "aime24", "aime25", "amc23", "olympiadbench")  # = presets' val_n keys
ALL_SOURCES = (TRAIN_SOURCE, *BENCHMARK_SOURCES)
EXPECTED_ROWS = {TRAIN_SOURCE: 7500, "math500": 500, "aime24": 30, "aime25": 30, "amc23": 40}  # [v2]


@dataclass(frozen=True)
class HFSource:
    """Where a file comes from on the Hub (not reachable from our CI; checked by users)."""

    path: str
    name: str | None
    split: str


HF_SOURCES = {
    TRAIN_SOURCE: HFSource("DigitalLearningGmbH/MATH-lighteval", None, "train"),  # MATH train, 7,500
    "math500": HFSource("HuggingFaceH4/MATH-500", None, "test"),
    "aime24": HFSource("HuggingFaceH4/aime_2024", None, "train"),
    "aime25": HFSource("yentinglin/aime_2025", None, "train"),
    "amc23": HFSource("math-ai/amc23", None, "test"),
    "olympiadbench": HFSource("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
}


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


def _answer(record: dict[str, Any], source: str, index: int) -> str:
    for key in ("answer", "final_answer"):
        value = record.get(key)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # AMC answers arrive as 17.0
        if value is not None and str(value).strip():
            return str(value).strip()
    solution = record.get("solution")
    boxed = last_boxed(str(solution)) if solution else None
    if boxed:
        return boxed
    raise UserError(f"{source} row {index} has no answer (fields: answer, final_answer, or a solution with \\boxed{{}})")


def _problem(record: dict[str, Any], source: str, index: int) -> str:
    for key in ("problem", "question", "Problem", "Question"):
        if record.get(key):
            return str(record[key]).strip()
    raise UserError(f"{source} row {index} has no problem text (field problem or question)")


def to_verl_rows(records: Iterable[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """Records with a problem and an answer -> verl rows (see the module docstring)."""
    split = "train" if source == TRAIN_SOURCE else "test"
    rows = []
    for index, record in enumerate(records):
        problem, answer = _problem(record, source, index), _answer(record, source, index)
        rows.append({
            "data_source": source,
            "prompt": [{"role": "user", "content": f"{problem} {INSTRUCTION}"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": answer},
            "extra_info": {"split": split, "index": index, "question": problem, "answer": answer},
        })
    if not rows:
        raise UserError(f"{source} has no rows")
    return rows


def read_local(from_dir: Path, source: str) -> list[dict[str, Any]]:
    """``<from_dir>/<source>.jsonl|.json|.parquet`` as a list of dicts."""
    for suffix in (".jsonl", ".json", ".parquet"):
        path = from_dir / f"{source}{suffix}"
        if not path.exists():
            continue
        if suffix == ".parquet":
            import pandas as pd  # deferred: pandas

            return pd.read_parquet(path).to_dict("records")
        text = path.read_text(encoding="utf-8")
        if suffix == ".json":
            data = json.loads(text)
            return data if isinstance(data, list) else list(data.values())[0]
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    raise UserError(f"{from_dir} has no {source}.jsonl, {source}.json or {source}.parquet")


def read_hub(source: str) -> list[dict[str, Any]]:
    """One dataset from the Hugging Face Hub; a one-line error when it cannot be reached."""
    hf = HF_SOURCES[source]
    try:
        from datasets import load_dataset  # deferred: datasets

        return list(load_dataset(hf.path, hf.name, split=hf.split))
    except Exception as exc:  # offline, gated, renamed: the user should use --from
        raise UserError(f"cannot load {hf.path} from the Hugging Face Hub ({first_line(exc)}); "
                        f"download it elsewhere and pass --from DIR") from None


def prepare(out_dir: Path, from_dir: Path | None = None, sources: Iterable[str] = ALL_SOURCES) -> dict[str, int]:
    """Write every source's parquet into ``out_dir`` (all or nothing); returns rows per file."""
    import pandas as pd  # deferred: pandas

    sources = list(sources)
    unknown = [s for s in sources if s not in ALL_SOURCES]
    if unknown:
        raise UserError(f"unknown data source {', '.join(unknown)}; known: {', '.join(ALL_SOURCES)}")
    if from_dir is not None and not Path(from_dir).is_dir():
        raise UserError(f"--from {from_dir} is not a folder")
    tables = {}
    for source in sources:
        records = read_local(Path(from_dir), source) if from_dir is not None else read_hub(source)
        tables[source] = to_verl_rows(records, source)
        expected = EXPECTED_ROWS.get(source)
        if from_dir is None and expected is not None and len(tables[source]) != expected:
            raise UserError(f"{source} has {len(tables[source])} rows from the Hub, expected {expected}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".asym-data-", dir=out_dir))
    try:
        for source, rows in tables.items():
            pd.DataFrame(rows).to_parquet(staging / f"{source}.parquet", index=False)
        for source in tables:
            os.replace(staging / f"{source}.parquet", out_dir / f"{source}.parquet")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {source: len(rows) for source, rows in tables.items()}
