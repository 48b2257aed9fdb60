"""`asym base-model`: where the embedded base models come from, and how to rebuild one.

The presets' base models are shipped with the package (`tinyrlvr/base_models/`), so every machine
trains on the same weights; `build` reruns the warm-up that made one (minutes on 2 cores) and prints
how the result compares with the shipped file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(help="The embedded engine's base models: show them, rebuild them.", no_args_is_help=True)

DEFAULT_MODEL = "embedded-carry"  # experiments.presets.EMBEDDED_MODELS[0], without importing the presets at startup
ModelOpt = Annotated[str, typer.Option("--model", help="An embedded model preset (`asym study show` lists them).")]
SmokeOpt = Annotated[bool, typer.Option("--smoke", help="The smoke preset's (smaller) base model.")]


def _engine_config(model: str, smoke: bool):
    from experiments.presets import backend_of, resolve_preset, smoke_layer  # deferred: omegaconf
    from tinyrlvr.config import EngineConfig  # deferred: asym --help

    if backend_of(model) != "embedded":
        raise ValueError(f"model '{model}' is not an embedded preset; base models belong to the embedded engine")
    preset = resolve_preset(model, [smoke_layer("embedded")] if smoke else [])
    return EngineConfig.create(estimator="grpo", **preset.settings_dict())


@app.command("show")
def show(model: ModelOpt = DEFAULT_MODEL, smoke: SmokeOpt = False) -> None:
    """Print the base model's key, where it is, its content hash and how the warm-up made it."""

    from tinyrlvr.base_model import (base_model_path, base_model_report, content_hash,  # deferred: numpy, torch
                                     shipped_base_model_path)

    cfg = _engine_config(model, smoke)
    path = base_model_path(cfg)
    where = "shipped" if path == shipped_base_model_path(cfg) else ("cached" if path.exists() else "not made yet")
    typer.echo(f"model {model}{' (smoke)' if smoke else ''}: key {cfg.base_model_key()}, {where}: {path}")
    if not path.exists():
        typer.echo("it is made by a warm-up on first use, or now with `asym base-model build`")
        return
    report = base_model_report(path)
    warmup = cfg.base_model_settings()
    typer.echo(f"content hash {content_hash(path)}; warm-up {json.dumps(warmup)}")
    relearn = f" + {report['relearn_steps']} relearn" if report.get("relearn_steps") else ""
    typer.echo(f"accuracy per tier at T=1 after {report.get('steps')}{relearn} steps: {report['accuracy']} "
               f"({report['seconds']:.0f} s, torch {report.get('torch', '?')})")


@app.command("build")
def build(
    model: ModelOpt = DEFAULT_MODEL,
    smoke: SmokeOpt = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write here (default: the cache, never the package).")] = None,
) -> None:
    """Rerun the warm-up that made the base model (deterministic on one machine; other CPUs may round differently)."""

    from tinyrlvr.base_model import build_base_model, content_hash, shipped_base_model_path  # deferred: numpy, torch

    cfg = _engine_config(model, smoke)
    target = out or Path(cfg.cache_dir).expanduser() / f"rebuilt-base-{cfg.base_model_key()}.pt"
    if target.exists():
        raise ValueError(f"{target} exists; pass another --out")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create {target.parent}: {exc.strerror}") from None
    with Console(stderr=True).status(f"warming up the base model ({cfg.warmup_steps} steps)..."):
        report = build_base_model(cfg, target)
    typer.echo(f"wrote {target} (content hash {report['content_hash']}); accuracy per tier at T=1: {report['accuracy']}")
    shipped = shipped_base_model_path(cfg)
    if shipped.exists():
        same = content_hash(shipped) == report["content_hash"]
        typer.echo(f"shipped {shipped.name}: content hash {content_hash(shipped)} ({'identical' if same else 'differs: float rounding of this CPU'})")
