"""hvac, imported on first use, and what its 403s say: shared by the source and its loop path."""

from __future__ import annotations

from typing import Any

from authchain.errors import ConfigError

__all__ = ["INSTALL_HINT", "import_hvac", "rejection"]

INSTALL_HINT = "pip install 'authchain[vault]'"


def import_hvac() -> Any:
    try:
        import hvac
        import hvac.exceptions
        import hvac.utils
    except ImportError:
        raise ConfigError(f"the vault source needs hvac, which is not installed ({INSTALL_HINT})") from None
    return hvac


def rejection(error: Exception) -> bool | None:
    """What a 403's errors say about the token: rejected (True), a policy (False), or only a
    lookup-self can tell (None: the bare "permission denied" both give)."""
    errors = [str(item).strip() for item in (getattr(error, "errors", None) or [])]
    if any("invalid token" in item for item in errors):
        return True
    if errors != ["permission denied"]:
        return False
    return None
