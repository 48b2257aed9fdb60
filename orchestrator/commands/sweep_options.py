"""The options every `asym sweep` command shares, declared once.

Typer builds a command's options from its function signature and has no parameter groups, so
``shared_options`` appends the shared ones to a command's signature and hands them to the function
as one ``SweepArgs``: `asym sweep <study>`, `run FILE` and `optuna` cannot drift apart.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, fields
from enum import Enum
from typing import Annotated, List, Optional

import typer

from orchestrator.commands.choices import BackendName


class SchedulerName(str, Enum):
    fifo = "fifo"
    asha = "asha"


@dataclass(frozen=True)
class SweepArgs:
    """The shared options, parsed (validated later, by the planner and ``SweepOptions``)."""

    backend: BackendName
    model: Optional[str]
    seeds: Optional[str]
    steps: Optional[int]
    smoke: bool
    name: Optional[str]
    config: Optional[str]
    dry_run: bool
    as_json: bool
    max_concurrent: Optional[int]
    gpus_per_trial: Optional[float]
    cpus_per_trial: Optional[float]
    max_failures: int
    sets: Optional[List[str]]
    cluster: Optional[str]
    address: Optional[str]
    storage: Optional[str]


# (the typed option, its default) per SweepArgs field, in --help order
OPTIONS = {
    "backend": (Annotated[BackendName, typer.Option(help="Where trials train: the embedded CPU engine or verl.")],
                BackendName.embedded),
    "model": (Annotated[Optional[str], typer.Option("--model", help="Model preset(s), comma-separated (default: the study's).")], None),
    "seeds": (Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2 (default: the study's, else 0; optuna: one).")], None),
    "steps": (Annotated[Optional[int], typer.Option("--steps", help="RL steps per trial (default: the preset's).")], None),
    "smoke": (Annotated[bool, typer.Option("--smoke", help="Shrink every trial to seconds (tests, quick start).")], False),
    "name": (Annotated[Optional[str], typer.Option("--name", help="The sweep's name (default: <study>-<plan hash>).")], None),
    "config": (Annotated[Optional[str], typer.Option("--config", help="A YAML file overriding preset values.")], None),
    "dry_run": (Annotated[bool, typer.Option("--dry-run", help="Print the planned trials and exit.")], False),
    "as_json": (Annotated[bool, typer.Option("--json", help="With --dry-run: print a JSON list.")], False),
    "max_concurrent": (Annotated[Optional[int], typer.Option("--max-concurrent", help="At most this many trials at once.")], None),
    "gpus_per_trial": (Annotated[Optional[float], typer.Option("--gpus-per-trial", help="GPUs Tune reserves per trial (default: embedded 0, verl its preset's).")], None),
    "cpus_per_trial": (Annotated[Optional[float], typer.Option("--cpus-per-trial", help="CPUs Tune reserves per trial (= its torch threads; default 1).")], None),
    "max_failures": (Annotated[int, typer.Option("--max-failures", help="Retries of a failed trial.")], 2),
    "sets": (Annotated[Optional[List[str]], typer.Option("--set", help="Sweep a setting: key=v1,v2 (any preset key, alpha_pos, entropy_coeff, clip_high, loss_agg, params.NAME, model, backend). Repeatable; axes multiply.")], None),
    "cluster": (Annotated[Optional[str], typer.Option("--cluster", help="Submit to the Ray cluster of this launcher YAML.")], None),
    "address": (Annotated[Optional[str], typer.Option("--address", help="Submit to a running Ray cluster's head (address).")], None),
    "storage": (Annotated[Optional[str], typer.Option("--storage", help="A folder every node mounts (path or file:// URI): Tune state, trial checkpoints and the sweep state live there, so retried trials resume on any node and `asym sweep resume --storage` works from any node. Needed on a multi-node cluster (default: ./.asym; a cluster file's `metadata: {storage: PATH}`).")], None),
}
assert list(OPTIONS) == [f.name for f in fields(SweepArgs)]

SchedOpt = Annotated[SchedulerName, typer.Option("--scheduler", help="fifo runs every trial to the end; asha stops weak ones early.")]
RerunOpt = Annotated[bool, typer.Option("--rerun", help="Run every trial again, even one whose key already finished in the tracking store (by default it is reused, not rerun).")]


def shared_options(func):
    """``func(..., args: SweepArgs)`` as a Typer command whose options are its own plus OPTIONS."""
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "args"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
              for name, (annotation, default) in OPTIONS.items()]

    @functools.wraps(func)
    def command(*positional, **given):
        args = SweepArgs(**{name: given.pop(name) for name in OPTIONS})
        return func(*positional, args=args, **given)

    parameters = own + shared
    command.__signature__ = inspect.Signature(parameters, return_annotation=None)
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    del command.__wrapped__  # Typer reads __signature__, not the wrapped function's
    return command
