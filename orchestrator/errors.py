"""Errors that reach the user as one line on stderr and a non-zero exit, never a traceback."""


class UserError(Exception):
    """Bad input or an unusable environment: the message says what to change."""
