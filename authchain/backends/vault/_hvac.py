"""What the vault source and its loop path (``_native.py``) share: hvac, imported on first use,
what its 403s say, and the advice for a redirect to another address."""

from __future__ import annotations

from typing import Any

from authchain.errors import ConfigError

__all__ = ["INSTALL_HINT", "REDIRECT_ADVICE", "import_hvac", "rejection"]

INSTALL_HINT = "pip install 'authchain[vault]'"
REDIRECT_ADVICE = (
    "Set url (or VAULT_ADDR) to the address that answers itself: with Vault HA, the active node's "
    "address, or a load balancer that sends requests to the active node"
)


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
