"""Credentials never reach a page, a log line or a stored tag: a URI's user:password is masked."""

from __future__ import annotations

import re
import urllib.parse


def redact(uri: str) -> str:
    """``uri`` without the user:password part (``https://u:p@host/x`` -> ``https://***@host/x``)."""
    parts = urllib.parse.urlsplit(uri)
    if not parts.username and not parts.password:
        return uri
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def redact_text(text: str) -> str:
    """Any ``scheme://user:password@`` inside a message (an error naming a request's URL) masked."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@", r"\1***@", text)
