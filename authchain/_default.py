"""The process-wide default chain behind ``authchain.resolve`` and friends.

Built lazily on first use from the config found from the working directory
(or ``AUTHCHAIN_CONFIG``), so importing authchain reads no file. It is the
only global in authchain besides the caches, and it has a reset.
"""

from __future__ import annotations

import threading

from authchain._chain import Chain
from authchain._process import register_default_chain

__all__ = ["get_default_chain", "reset_default_chain", "set_default_chain"]

_lock = threading.Lock()
_chain: Chain | None = None


def get_default_chain() -> Chain:
    """The default chain, built from config on first call."""
    global _chain
    chain = _chain  # no lock once built: this is on every authchain.resolve() call
    if chain is not None:
        return chain
    with _lock:
        if _chain is None:
            _chain = Chain.from_config()
        return _chain


def set_default_chain(chain: Chain | None) -> Chain | None:
    """Replace the default chain (None: rebuild from config on next use); returns the old one."""
    global _chain
    with _lock:
        previous, _chain = _chain, chain
    return previous


register_default_chain(get_default_chain)


def reset_default_chain() -> None:
    """Close the default chain and forget it, so the next call re-reads the config."""
    previous = set_default_chain(None)
    if previous is not None:
        previous.close()
