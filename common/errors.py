"""Errors that reach the user as one line on stderr and exit code 2, never a traceback.

Defined in the bottom layer so every layer (engine, planner, orchestrator, analysis, cluster) can
raise them; the CLI turns them (and ``ValueError``) into ``error: <one line>``.
"""


class UserError(Exception):
    """Bad input or an unusable environment: the message says what to change."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception as one line for a message: its text's first line (cut at ``limit`` characters,
    with "..."), or its type's name when it has no text."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if limit is None or len(line) <= limit else line[: limit - 3] + "..."
