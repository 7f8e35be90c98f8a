"""Start-up guard of the `superpose` command (imported first by the package's __init__).

The package's imports (torch) take seconds; a Ctrl-C or SIGTERM in that time would print a
traceback. When this process is the `superpose` command, both exit with one line until
`cli.main` installs its own handlers. Nothing else is imported here, so the guard is in
place before anything slow starts.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["guard_startup"]


def _quiet_exit(signum, frame):  # before main() runs there is nothing to clean up
    print("superpose: interrupted", file=sys.stderr)
    os._exit(128 + signum)


def guard_startup() -> None:
    """When this process is the `superpose` command, make Ctrl-C/SIGTERM during start-up
    (the imports take seconds) exit with one line instead of a traceback. Called first
    thing by the package's __init__; does nothing in any other program."""
    if os.path.basename(sys.argv[0] if sys.argv else "") != "superpose":
        return
    try:
        signal.signal(signal.SIGINT, _quiet_exit)
        signal.signal(signal.SIGTERM, _quiet_exit)
    except ValueError:  # not the main thread
        pass
