"""Errors that reach the user as one line on stderr and exit code 2, never a traceback.

Defined in the bottom layer so every layer (engine, planner, orchestrator, analysis, cluster) can
raise them; the CLI turns them (and ``ValueError``) into ``error: <one line>``.
"""


class UserError(Exception):
    """Bad input or an unusable environment: the message says what to change."""
