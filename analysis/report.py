"""`asym report`: a sweep's figures and tables, one self-contained report.html, attached to MLflow.

``build_report`` loads the sweep once (``analysis.load``), builds the report's context
(``analysis.report_context``: settings, the checkpoint rule, every summary read more than once),
then renders whatever the sweep supports, read off the declarations in ``analysis.report_figures``
(``FIGURES``) and ``analysis.report_tables`` (``TABLES``). Files are rendered into a scratch folder
next to ``out_dir`` and moved in at the end, so a failure leaves nothing half-written; a previous
report's files in that folder (any file a declared figure or table may write) are removed first;
then the files are logged as artifacts of the sweep's parent run under ``report/``.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from analysis import figures
from analysis.load import load_sweep
from analysis.report_context import ReportSettings, Section, build_context  # noqa: F401  (ReportSettings: the API)
from analysis.report_figures import FIGURES
from analysis.report_tables import TABLES
from common.redact import redact

ARTIFACT_DIR = "report"
FILE_FORMATS = ("png", "svg", "csv", "md", "tex")


def report_file_pattern() -> re.Pattern:
    """Every file a report may write, derived from the declared figures and tables: a stem, an
    optional suffix (a model, an estimator, "_runs"), a format; plus report.html and runs.csv."""
    stems = [entry.stem for entry in FIGURES] + [stem for entry in TABLES for stem in entry.stems]
    alternatives = "|".join(re.escape(stem) for stem in sorted(set(stems), key=len, reverse=True))
    return re.compile(rf"^({alternatives})(_[^/]*)?\.({'|'.join(FILE_FORMATS)})$|^(report\.html|runs\.csv)$")


def _plan(data, settings: ReportSettings, out: Path) -> tuple[str, list[tuple[str, Callable[[], Section | None]]]]:
    """(the checkpoint rule as the captions say it, every figure and table this sweep supports as
    (progress description, render job)), read off the declarative FIGURES and TABLES."""

    ctx = build_context(data, settings, out)
    jobs: list[tuple[str, Callable[[], Section | None]]] = []
    for entry in FIGURES:
        for model in (data.models if entry.per_model else [None]):
            if not entry.applies(ctx, model):
                continue

            def job(entry=entry, model=model) -> Section | None:
                fig = entry.draw(ctx, model)
                if fig is None:  # nothing of this model to draw
                    return None
                stem = entry.stem + (ctx.suffix(model) if entry.per_model else "")
                paths = figures.save(fig, out, stem)
                return Section(entry.title.format(model=model), entry.caption(ctx), png=out / f"{stem}.png",
                               files=tuple(p.name for p in paths) + entry.extra_files(ctx, model))

            jobs.append((f"{entry.stem}{'' if model is None else ' ' + model}", job))
    jobs += [(entry.name, lambda render=entry.render: render(ctx)) for entry in TABLES if entry.applies(ctx)]
    return ctx.select_text, jobs


def _runs_section(data, out: Path) -> Section:
    columns = [c for c in ("trial", "label", "estimator", "alpha_pos", "alpha_neg", "seed", "model", "backend",
                           "steps", "run_id") if c in data.runs.columns]
    data.runs.to_csv(out / "runs.csv", index=False)
    table = data.runs[columns].to_html(index=False, border=0, float_format=lambda v: f"{v:g}")
    caption = f"{len(data.runs)} finished trial(s)"
    if data.unfinished:
        caption += f"; left out (not finished): {', '.join(data.unfinished)}"
    return Section("Trials", caption, table_html=table, files=("runs.csv",))


def _html(data, settings: ReportSettings, sections: list[Section], rule: str) -> str:
    def image(path: Path) -> str:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{encoded}">'

    blocks = []
    for s in sections:
        body = image(s.png) if s.png else s.table_html
        files = ", ".join(s.files)
        blocks.append(f"<section><h2>{html.escape(s.title)}</h2>{body}<p class='cap'>{html.escape(s.caption)}</p>"
                      f"<p class='files'>files: {html.escape(files)}</p></section>")

    meta = {"sweep": data.name, "study": data.study, "tracking store": redact(data.tracking_uri),
            "parent run": data.parent_run_id, "tables report": rule or "(no evaluation tracked)",
            **{f"setting {k}": v for k, v in asdict(settings).items()}}
    meta_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items())
    style = ("body{font-family:sans-serif;max-width:1150px;margin:24px auto;color:#222}"
             "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}caption{text-align:left;font-weight:bold}"
             ".meta td,.meta th{text-align:left}"
             ".cap{color:#444}.files{color:#888;font-size:small}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>asym report: {html.escape(data.name)}</title>"
            f"<style>{style}</style></head><body><h1>Sweep report: {html.escape(data.name)}</h1>"
            f"<table class='meta'>{meta_rows}</table>{''.join(blocks)}</body></html>\n")


def _move_into(scratch: Path, out_dir: Path) -> None:
    """A previous report in the same folder is replaced whole (no stale figure from another sweep
    survives); other files there are left alone."""
    if out_dir.exists():
        pattern = report_file_pattern()
        for old in out_dir.iterdir():
            if old.is_file() and pattern.match(old.name):
                old.unlink()
        for path in scratch.iterdir():
            os.replace(path, out_dir / path.name)
        scratch.rmdir()
    else:
        os.replace(scratch, out_dir)


def build_report(sweep_name: str, out_dir: Path | str, tracking_uri: str | None = None,
                 settings: ReportSettings | None = None, show_progress: bool = True) -> Path:
    """Render every figure and table the sweep supports into ``out_dir``; returns report.html's path.

    Raises ValueError (one line) for bad settings, an unknown sweep or a sweep without a finished
    trial; nothing is written then.
    """

    settings = (settings or ReportSettings()).validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; give a folder for the report")
    console = Console(stderr=True)
    with console.status(f"loading sweep '{sweep_name}' from MLflow", spinner="dots"):
        data = load_sweep(sweep_name, tracking_uri)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        rule, jobs = _plan(data, settings, scratch)
        sections = []
        columns = (TextColumn("[bold]report[/bold] {task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True, disable=not show_progress) as progress:
            task = progress.add_task("", total=len(jobs) + 1)
            for description, job in jobs:
                progress.update(task, description=description)
                section = job()
                if section is not None:
                    sections.append(section)
                progress.advance(task)
            progress.update(task, description="report.html")
            sections.append(_runs_section(data, scratch))
            (scratch / "report.html").write_text(_html(data, settings, sections, rule))
            progress.advance(task)
        _move_into(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if settings.log_artifacts:
        _attach(data, out_dir, sorted({f for s in sections for f in s.files} | {"report.html"}), console)
    return out_dir / "report.html"


def _attach(data, out_dir: Path, names: list[str], console) -> None:
    """Log this report's files under ``report/`` on the sweep's parent run (shown in the MLflow UI)."""
    from mlflow.tracking import MlflowClient  # deferred: mlflow

    client = MlflowClient(tracking_uri=data.tracking_uri)
    with tempfile.TemporaryDirectory() as staging:
        for name in names:
            shutil.copy2(out_dir / name, Path(staging) / name)
        try:
            client.log_artifacts(data.parent_run_id, staging, artifact_path=ARTIFACT_DIR)
        except Exception as exc:  # the report on disk stands; say why the UI copy is missing
            console.print(f"warning: report written, but not attached to MLflow run {data.parent_run_id}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
