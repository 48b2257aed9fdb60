"""The entrypoint of a sweep submitted as a Ray Job: `python -m cluster.job_driver [--require-env NAME]... -- ARGV`.

It runs on the head, in the uploaded checkout, and does two things: checks that the credentials the
submitter uses (named, never their values) are set in the head's environment, then runs the very
same `asym sweep ARGV`. Ray sets RAY_ADDRESS for a job's driver, so the sweep's Ray Tune attaches to
the cluster instead of starting a private Ray.
"""

from __future__ import annotations

import os
import sys


def parse(argv: list[str]) -> tuple[list[str], list[str]]:
    """(required variable names, the sweep's argv)."""
    if "--" not in argv:
        raise SystemExit("usage: python -m cluster.job_driver [--require-env NAME]... -- STUDY [OPTIONS]")
    split = argv.index("--")
    head, sweep_argv = argv[:split], argv[split + 1:]
    required = []
    while head:
        flag = head.pop(0)
        if flag != "--require-env" or not head:
            raise SystemExit(f"job_driver: unexpected {flag!r}")
        required.append(head.pop(0))
    return required, sweep_argv


def main(argv: list[str] | None = None) -> None:
    required, sweep_argv = parse(list(sys.argv[1:] if argv is None else argv))
    missing = [name for name in required if not os.environ.get(name)]
    if missing:
        print(
            f"error: {', '.join(missing)} not set on the cluster head: the submitter uses it; export it in the "
            "environment of the head's and workers' `ray start` (e.g. NAME=$(cat ~/.secret) ray start ...)",
            file=sys.stderr,
        )
        sys.exit(2)
    # Replace this process by the CLI (a layer above cluster/, so it is run, not imported).
    os.execv(sys.executable, [sys.executable, "-m", "orchestrator.cli", "sweep", *sweep_argv])


if __name__ == "__main__":
    main()
