"""Watch a running sweep: Ctrl-C (Tune saves its state and stops the trials; a second one stops the
driver). The live progress table is ``orchestrator.live``; the tracking server's supervision is
``orchestrator.mlflow_server``."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

@contextmanager
def sigint_watch() -> Iterator[Any]:
    """Yield a callable telling whether Ctrl-C stopped ``Tuner.fit``.

    On the first SIGINT Tune saves its state, stops the trials and returns normally, after putting
    back the handler it found; so the one installed here (a second Ctrl-C: KeyboardInterrupt) is
    current again after ``fit`` exactly when it was interrupted.
    """
    if threading.current_thread() is not threading.main_thread() or os.environ.get("TUNE_DISABLE_SIGINT_HANDLER"):
        yield lambda: False
        return

    def second_sigint(signum, frame):
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, second_sigint)
    state = {"interrupted": False}
    try:
        yield lambda: state["interrupted"]
    finally:
        state["interrupted"] = signal.getsignal(signal.SIGINT) is second_sigint
        signal.signal(signal.SIGINT, previous)
