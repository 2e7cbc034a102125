"""``vault_client``: an hvac client, logged in, with its token or AppRole found through the chain.

The settings are a Vault source's (``url``, ``namespace``, ``auth``, ...) from
``[clients.vault]``; the login itself is the vault source's, so renewal and
re-login behave the same. Explicit credentials come first, then the
configured names through the chain (never from any Vault source: no
recursion), then, only when no token name was given anywhere, hvac's own
``VAULT_TOKEN`` / ``~/.vault-token``. A credential passed as a reference
(``token="env://MY_TOKEN"``) is a name to look up, like ``credential_names``;
a named credential nothing has is an error, never another identity.
"""

from __future__ import annotations

from typing import Any

from authchain._chain import Chain
from authchain._default import get_default_chain
from authchain._scrub import scrubbed
from authchain.clients._base import (
    CACHE,
    ClientExplanation,
    client_settings,
    factory_arguments,
    fingerprint,
    lookup_credential,
)
from authchain.clients._coerce import coerce_single, is_place
from authchain.config import untrusted_endpoint
from authchain.errors import ConfigError
from authchain.refs import SecretRef, is_reference
from authchain.sources.base import Option

__all__ = ["explain_vault", "vault_client"]

_CLIENT_SETTINGS = (
    "url",
    "namespace",
    "verify",
    "ca_cert",
    "timeout",
    "auth",
    "auth_mount",
    "token",
    "role_id",
    "secret_id",
    "role",
    "jwt",
    "jwt_path",
)


def _options() -> tuple[Option, ...]:
    from authchain.backends.vault.source import VaultSource

    return tuple(option for option in VaultSource.options if option.name in _CLIENT_SETTINGS)


@scrubbed
def vault_client(
    *,
    url: str | None = None,
    token: Any = None,
    role_id: Any = None,
    secret_id: Any = None,
    jwt: Any = None,
    auth: str | None = None,
    namespace: str | None = None,
    credential_names: dict[str, str] | None = None,
    chain: Chain | None = None,
) -> Any:
    """A logged-in ``hvac.Client``, cached per process by its settings' fingerprint.

    Args:
        url: server address (default ``[clients.vault] url``, else ``VAULT_ADDR``).
        token, role_id, secret_id, jwt: explicit credential *values* (str or SecretValue,
            e.g. a Secret task's result; a dict from ``as_dict=True`` is refused: pass
            one field), or references (``SecretRef`` / ``"env://MY_TOKEN"``) to look up
            through the chain. Not together with a different ``credential_names``
            entry for the same piece: that is a ``ConfigError`` naming both.
        auth: ``token`` (default), ``approle``, ``kubernetes`` or ``jwt``.
        credential_names: override the names looked up through the chain
            (``{"token": "VAULT_TOKEN"}``; defaults from ``[clients.vault]``).
        chain: the chain to ask (default: the configured one).

    Call it again when you need the client: a cached client is renewed (or
    logged in again) when its token nears the end of its TTL.
    """
    source = _source(url, token, role_id, secret_id, jwt, auth, namespace, credential_names, chain)
    return source.client()


@scrubbed
def explain_vault(**arguments: Any) -> ClientExplanation:
    """Where a ``vault_client`` built with these arguments (the same keywords) gets each piece from."""
    given = factory_arguments(vault_client, arguments)
    chain = given["chain"] or get_default_chain()
    explanation = ClientExplanation("vault")
    settings = client_settings(
        "vault", chain, _options(), {name: given[name] for name in ("url", "auth", "namespace")}, explanation
    )
    credential_names = given["credential_names"]
    settings.update(credential_names or {})
    explicit = {piece: given[piece] for piece in ("token", "role_id", "secret_id", "jwt")}
    _names_from_references(explicit, settings, credential_names)
    for piece in _pieces(settings["auth"]):
        from authchain.backends.vault.source import DEFAULT_CREDENTIAL_NAMES

        named = settings[piece] is not None
        name = settings[piece] or DEFAULT_CREDENTIAL_NAMES[piece]
        try:
            found = lookup_credential(
                explicit[piece], name, chain, kind="vault", own_types=("vault",), required=named
            )
        except ConfigError:
            explanation.origins[piece] = f"missing: {name} was not found (a named credential has no fallback)"
            continue
        origin = found.origin
        if found.value is None and piece == "token":
            origin = "native default (hvac: VAULT_TOKEN / ~/.vault-token)"
        explanation.origins[piece] = origin
    return explanation


def _names_from_references(
    explicit: dict[str, Any], settings: dict[str, Any], credential_names: dict[str, str] | None
) -> None:
    """Move credentials passed as references from ``explicit`` to the names in ``settings``,
    and make the values one ``SecretValue`` each (a Secret task's result as it comes).

    A reference says where to look, exactly as ``credential_names`` does; sent
    as a token it would be the reference's text, and nothing it names. A piece
    given both as an argument and in ``credential_names`` is refused unless
    both are the same reference: picking one would log in as an identity the
    caller may not have meant.
    """
    named = credential_names or {}
    for piece, value in list(explicit.items()):
        if value is None:
            continue
        other = named.get(piece)
        if other is not None and not (is_place(value) and str(value) == str(other)):
            del value
            raise ConfigError(
                f"vault_client: {piece}= and credential_names[{piece!r}] both say which {piece} to use "
                f"and they differ; pass only one (values not shown)"
            )
        if isinstance(value, SecretRef) or is_reference(value):
            settings[piece] = str(value)
            explicit[piece] = None
        else:
            explicit[piece] = coerce_single(value, piece)


def _pieces(auth: str) -> tuple[str, ...]:
    return {"token": ("token",), "approle": ("role_id", "secret_id"), "jwt": ("jwt",)}.get(auth, ())


def _source(
    url: str | None,
    token: Any,
    role_id: Any,
    secret_id: Any,
    jwt: Any,
    auth: str | None,
    namespace: str | None,
    credential_names: dict[str, str] | None,
    chain: Chain | None,
) -> Any:
    from authchain.backends.vault.source import VaultSource

    chain = chain or get_default_chain()
    settings = client_settings("vault", chain, _options(), {"url": url, "auth": auth, "namespace": namespace})
    settings.update(credential_names or {})
    given = {"token": token, "role_id": role_id, "secret_id": secret_id, "jwt": jwt}
    _names_from_references(given, settings, credential_names)
    explicit = {name: value for name, value in given.items() if value is not None}
    # A server address (or TLS trust) from an untrusted config file gets no credentials.
    written = ("verify", "ca_cert") if url is not None else ("url", "verify", "ca_cert")
    refused = untrusted_endpoint(chain.settings, "clients.vault", written)
    key = fingerprint("vault", {**settings, "chain": id(chain), "refused": bool(refused)}, explicit)

    def build() -> VaultSource:
        options = {name: value for name, value in settings.items() if value is not None}
        lookup = chain
        if explicit:
            from authchain.clients._explicit import ExplicitValues
            from authchain.values import SecretValue

            # Explicit values answer first, under names of their own: the configured
            # name may be a reference, which would go straight to its backend.
            for name in explicit:
                options[name] = f"EXPLICIT_{name.upper()}"
            given = ExplicitValues(
                {f"EXPLICIT_{name.upper()}": SecretValue(_text(value)) for name, value in explicit.items()},
                name="explicit",
            )
            lookup = Chain([given, *chain.sources], cache_ttl=0)
        source = VaultSource(name="vault-client", **options)
        if refused:
            source.restrict_credentials(refused)
        source.use_credentials(lookup)
        return source

    return CACHE.get_or_build(key, build)


@scrubbed
def _text(value: Any) -> str:
    from authchain.values import SecretValue

    raw = value.get_secret_value() if isinstance(value, SecretValue) else value
    if not isinstance(raw, bytes):
        return str(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass  # the error holds the bytes: raised below, outside the handler, without it
    raise ConfigError("an explicit Vault credential is bytes that are not UTF-8 text")
