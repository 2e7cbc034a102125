"""``keyring_backend``: the keyring backend configured for this project."""

from __future__ import annotations

from typing import Any

from authchain._chain import Chain
from authchain._default import get_default_chain
from authchain.clients._base import CACHE, ClientExplanation, client_settings, factory_arguments, fingerprint
from authchain.config import untrusted_endpoint
from authchain.sources.base import Option

__all__ = ["explain_keyring", "keyring_backend"]

OPTIONS: tuple[Option, ...] = (
    Option("backend", str, None, "dotted path of a keyring backend class (default: keyring's choice)"),
)


def keyring_backend(backend: str | None = None, *, chain: Chain | None = None) -> Any:
    """The keyring backend: ``backend`` (a dotted class path), else ``[clients.keyring] backend``,
    else keyring's own choice. A headless machine with no backend gets keyring's
    ``fail.Keyring``, whose calls raise ``NoKeyringError`` saying what to install."""
    from authchain.backends.keyring.source import KeyringSource

    chain = chain or get_default_chain()
    settings = client_settings("keyring", chain, OPTIONS, {"backend": backend})
    # A backend path only an untrusted config file names is code that file chose to import.
    refused = untrusted_endpoint(chain.settings, "clients.keyring", () if backend else ("backend",))
    key = fingerprint("keyring", {**settings, "refused": bool(refused)})

    def build() -> KeyringSource:
        source = KeyringSource(name="keyring-client", backend=settings["backend"])
        if refused:
            source.restrict_credentials(refused)
        return source

    return CACHE.get_or_build(key, build).keyring_backend()


def explain_keyring(**arguments: Any) -> ClientExplanation:
    """Where a ``keyring_backend`` built with these arguments (the same keywords) gets its backend from."""
    given = factory_arguments(keyring_backend, arguments)
    chain = given["chain"] or get_default_chain()
    explanation = ClientExplanation("keyring")
    client_settings("keyring", chain, OPTIONS, {"backend": given["backend"]}, explanation)
    explanation.origins.setdefault("backend", "native default (keyring's choice)")
    return explanation
