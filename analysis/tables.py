"""Render the summary frames of Tables 1, 2 and 3 as Markdown, CSV and LaTeX (and HTML for the report).

The CSV keeps every number at full precision in the tracked unit (what a test or a notebook
reads back); Markdown, LaTeX and HTML show a rounded, paper-style view: accuracies in percent when
the tracked values are fractions, "mean [low, high]" when there is more than one seed, and the
best average of each model in bold. LaTeX is written by hand (booktabs), without jinja2.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Table:
    """A rendered table: a caption, header cells and body rows of display strings."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]]  # (row, column) cells to emphasise


def _fmt(value: float, scale: float, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value * scale:.{digits}f}"


def _cell(row: pd.Series, col: str, scale: float, digits: int) -> str:
    point = _fmt(row[col], scale, digits)
    if int(row.get("seeds", row.get("runs", 1))) > 1 and point != "-":
        return f"{point} [{_fmt(row[f'{col}_low'], scale, digits)}, {_fmt(row[f'{col}_high'], scale, digits)}]"
    return point


def accuracy_view(table: pd.DataFrame, benchmarks: list[str], caption: str, digits: int = 2) -> Table:
    """Tables 2/3: a row per (model, method), a column per benchmark, the average, the area under the
    selection benchmark's eval curve (when the runs have curves) and the selected steps."""
    values = table[[*benchmarks, "avg"]].to_numpy(dtype=float)
    with_auc = "auc" in table and table["auc"].notna().any()
    columns = [*benchmarks, "avg"] + (["auc"] if with_auc else [])
    percent = bool(values[~pd.isna(values)].size) and float(pd.DataFrame(values).abs().max().max()) <= 1.0
    scale = 100.0 if percent else 1.0
    several_models = table["model"].nunique() > 1
    headers = (["Model"] if several_models else []) + ["Method", *benchmarks, "Avg" + (" (%)" if percent else "")]
    headers += (["AUC" + (" (%)" if percent else "")] if with_auc else []) + ["Seeds", "Steps"]
    rows, bold = [], set()
    for model, block in table.groupby("model", sort=False):
        trained = block[~block["label"].str.endswith(" (base)")]
        best = set(trained.index[trained["avg"] == trained["avg"].max()])  # every tied best is bold
        for index, row in block.iterrows():
            cells = ([model] if several_models else []) + [row["label"]]
            cells += [_cell(row, col, scale, digits) for col in columns]
            avg_column = len(cells) - 1 - int(with_auc)
            cells += [str(int(row["seeds"])), str(row["steps"])]
            if index in best:
                bold.add((len(rows), avg_column))
            rows.append(cells)
    unit = "accuracy in percent" if percent else "accuracy"
    return Table(f"{caption} ({unit}; mean over seeds [95% bootstrap interval])", headers, rows, bold)


def kappa_view(table: pd.DataFrame, n_steps: int, caption: str, digits: int = 4) -> Table:
    """Table 1: kappa-bar per model with its interval over runs and its sign."""
    headers = ["Model", f"kappa (mean of first {n_steps} steps)", "95% interval", "Runs", "Sign"]
    rows = []
    for _, row in table.iterrows():
        interval = f"[{_fmt(row['kappa_low'], 1, digits)}, {_fmt(row['kappa_high'], 1, digits)}]"
        rows.append([row["model"], _fmt(row["kappa"], 1, digits), interval, str(int(row["runs"])), row["sign"]])
    return Table(caption, headers, rows, set())


COMPARISON_COLUMNS = (  # (frame column, header, scale, digits)
    ("accuracy", "Accuracy", 100.0, 1), ("reward_final", "Train reward (final, %)", 100.0, 1),
    ("entropy_final", "Entropy (final)", 1.0, 3),
    ("entropy_mean", "Entropy (mean)", 1.0, 3), ("none_solved", "None-solved (%)", 100.0, 1),
    ("all_solved", "All-solved (%)", 100.0, 1), ("kappa_bar", "kappa-bar", 1.0, 4),
    ("cov_logp_adv", "Cov(log pi, A)", 1.0, 4), ("clip_upper", "Clip upper (%)", 100.0, 2),
    ("clip_lower", "Clip lower (%)", 100.0, 2),
)


def comparison_view(table: pd.DataFrame, caption: str) -> Table:
    """The comparators table: a row per (model, method), mean over seeds [interval]; best accuracy bold."""
    several_models = table["model"].nunique() > 1
    headers = (["Model"] if several_models else []) + ["Method"] + [h for _, h, _, _ in COMPARISON_COLUMNS] + ["Seeds"]
    rows, bold = [], set()
    for model, block in table.groupby("model", sort=False):
        best = set(block.index[block["accuracy"] == block["accuracy"].max()])
        for index, row in block.iterrows():
            cells = ([model] if several_models else []) + [row["label"]]
            if index in best:
                bold.add((len(rows), len(cells)))
            cells += [_cell(row, col, scale, digits) for col, _, scale, digits in COMPARISON_COLUMNS]
            rows.append(cells + [str(int(row["seeds"]))])
    return Table(f"{caption} (mean over seeds [95% bootstrap interval])", headers, rows, bold)


def prop1_view(table: pd.DataFrame, caption: str) -> Table:
    """The Proposition 1 sign check: claim, method, predicted sign, observed sign, agree, numbers."""
    several_models = table["model"].nunique() > 1
    headers = (["Model"] if several_models else []) + ["Claim", "Method", "Predicted", "Observed", "Agree", "Detail"]
    rows = [([r["model"]] if several_models else []) + [r["claim"], r["label"], r["predicted"], r["observed"],
                                                       r["agree"], r["detail"]] for _, r in table.iterrows()]
    return Table(caption, headers, rows, set())


def to_markdown(table: Table) -> str:
    def line(cells):
        return "| " + " | ".join(cells) + " |"

    body = [[f"**{c}**" if (i, j) in table.bold else c for j, c in enumerate(r)] for i, r in enumerate(table.rows)]
    out = [f"**{table.caption}**", "", line(table.headers), line(["---"] * len(table.headers))]
    out += [line(cells) for cells in body]
    return "\n".join(out) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (needs \\usepackage{booktabs})."""
    spec = "l" * (2 if table.headers[0] == "Model" else 1)
    spec += "r" * (len(table.headers) - len(spec))
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_latex_escape(table.caption)}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(_latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        cells = [rf"\textbf{{{_latex_escape(c)}}}" if (i, j) in table.bold else _latex_escape(c) for j, c in enumerate(row)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = []
    for i, row in enumerate(table.rows):
        cells = "".join(
            f"<td><b>{html.escape(c)}</b></td>" if (i, j) in table.bold else f"<td>{html.escape(c)}</td>"
            for j, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return (f"<table><caption>{html.escape(table.caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def write(table: Table, frame: pd.DataFrame, out_dir: Path, stem: str) -> list[Path]:
    """<stem>.md and <stem>.tex from the view, <stem>.csv from the full-precision frame."""
    paths = [out_dir / f"{stem}.md", out_dir / f"{stem}.csv", out_dir / f"{stem}.tex"]
    paths[0].write_text(to_markdown(table))
    frame.to_csv(paths[1], index=False)
    paths[2].write_text(to_latex(table))
    return paths
