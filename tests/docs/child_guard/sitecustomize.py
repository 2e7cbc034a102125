"""The suite's network guard, inside every Python process a documented block starts.

The docs tests put this folder first on the block's ``PYTHONPATH``, so Python imports this
module at start-up, in the block's interpreter and in every Python program it runs (the
``authchain`` CLI included). It installs ``tests/_network_guard.py``'s audit hook, which
blocks a connection to or a lookup of anything but loopback (``OSError``), and at exit
appends what it blocked to the file ``AUTHCHAIN_DOCS_GUARD_LOG`` names; the test fails on a
non-empty file. Without that variable it does nothing, so the folder is inert elsewhere.
"""

from __future__ import annotations

import os

_LOG = os.environ.get("AUTHCHAIN_DOCS_GUARD_LOG")

if _LOG:
    import atexit

    from tests import _network_guard

    _network_guard.install()

    def _report(log: str = _LOG) -> None:
        if _network_guard.violations:
            with open(log, "a", encoding="utf-8") as handle:
                for violation in _network_guard.violations:
                    handle.write(violation.describe() + "\n")

    atexit.register(_report)
