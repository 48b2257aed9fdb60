"""The `asym` command: one Typer sub-app per command group, composed here and nothing else.

Sub-app modules import only typer at module level so `asym --help` stays fast; Ray, MLflow,
torch and verl are imported inside the commands that need them.
"""

from __future__ import annotations

import sys

import typer
from typer._click import exceptions as click_exc  # typer 0.29 vendors its own click

from orchestrator.commands import (
    base_model as base_model_cmd,
    cluster as cluster_cmd,
    data as data_cmd,
    doctor as doctor_cmd,
    estimators as estimators_cmd,
    probe as probe_cmd,
    report as report_cmd,
    study as study_cmd,
    sweep as sweep_cmd,
    sweep_jobs,
    train as train_cmd,
    ui as ui_cmd,
)
from common.errors import UserError

app = typer.Typer(
    name="asym",
    help="AsymGRPO studies as declared, reproducible, distributed sweeps (embedded CPU engine or verl).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(estimators_cmd.app, name="estimators")
app.add_typer(study_cmd.app, name="study")
app.add_typer(sweep_cmd.app, name="sweep")
sweep_jobs.register(sweep_cmd.app)
app.add_typer(report_cmd.app, name="report")
app.add_typer(data_cmd.app, name="data")
app.add_typer(base_model_cmd.app, name="base-model")
app.add_typer(cluster_cmd.app, name="cluster")
app.add_typer(probe_cmd.app, name="probe")
train_cmd.register(app)
ui_cmd.register(app)
doctor_cmd.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input becomes `error: <one line>` on stderr and exit code 2, no traceback."""
    try:
        code = app(args=argv, standalone_mode=False)  # a typer.Exit(n) inside comes back as n here
        if isinstance(code, int) and code:
            sys.exit(code)
    except click_exc.NoArgsIsHelpError as exc:
        exc.show()  # a bare group: print its help
        sys.exit(0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):  # a second Ctrl-C, or one outside a sweep
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except click_exc.ClickException as exc:  # usage errors: bad option values, missing arguments
        _fail(exc.format_message(), exc.exit_code)
    except (UserError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc) or type(exc).__name__, 2)
    else:
        if isinstance(code, int) and code:  # click returns a command's typer.Exit code when not standalone
            sys.exit(code)


def _fail(message: str, code: int) -> None:
    lines = message.strip().splitlines()
    print(f"error: {lines[0] if lines else 'invalid input'}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
