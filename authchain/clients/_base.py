"""What every client factory shares: settings from ``[clients.KIND]``, credential
lookup with provenance, a fingerprint cache, and lazy, picklable clients.

A factory resolves its settings (call arguments over ``[clients.KIND]`` over
defaults), its credentials (explicit → the chain → the SDK's own default),
fingerprints the result with SHA-256 (never a raw secret as a key or in a
repr), and returns the cached client for that fingerprint or builds one,
once, even when 32 threads ask at the same moment.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from authchain._cache import SingleFlight
from authchain._chain import Chain
from authchain._process import ProcessLocal
from authchain._records import record
from authchain.config import _SECRET_KEY, check_expanded_secret_setting, expand
from authchain.errors import ConfigError
from authchain.refs import SecretRef, is_reference, parses_as_reference
from authchain.sources.base import Option
from authchain.values import SecretValue

__all__ = [
    "ClientExplanation",
    "Credential",
    "LazyClient",
    "abuild",
    "clear",
    "client_settings",
    "fingerprint",
    "lazy",
    "lookup_credential",
]


T = TypeVar("T")

# -- where each piece came from ------------------------------------------------


@dataclass
class ClientExplanation:
    """Where each setting and credential of a client comes from; never a value.

    ``str()`` is a table; ``origins`` maps a piece (``credentials``,
    ``region_name``, ...) to its origin: ``explicit``, ``[clients.aws]``,
    ``chain: env (env) AWS_CREDENTIALS``, ``native default (boto3: env)``,
    or ``default``.
    """

    kind: str
    origins: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        width = max((len(key) for key in self.origins), default=0)
        lines = [f"{self.kind} client:"]
        lines += [f"  {key.ljust(width)}  {origin}" for key, origin in self.origins.items()]
        return "\n".join(lines)


@record
class Credential:
    """A credential the factory found, and where. ``value`` is None: the SDK decides."""

    value: SecretValue[Any] | None
    origin: str
    name: str | None = None

    def __repr__(self) -> str:
        return f"Credential(origin={self.origin!r}, name={self.name!r})"


def lookup_credential(
    explicit: Any,
    name: str | SecretRef | None,
    chain: Chain,
    *,
    kind: str,
    own_types: tuple[str, ...],
    required: bool = False,
) -> Credential:
    """explicit → ``name`` through the chain (a bare name: without the client's own types) → None.

    Args:
        explicit: a value the caller passed (whatever a Secret task returns: a
            SecretValue, a dict of them, JSON text, a mapping of strings), or None;
            see :mod:`authchain.clients._coerce`.
        name: the credential's name or reference (``AWS_CREDENTIALS``).
        kind: the client, as ``[clients.KIND]`` and messages name it.
        own_types: the source types of the store the client opens (``("vault",)``):
            a bare name is never looked up in them.
        required: a configured name that nothing has is a ``ConfigError``
            rather than a quiet fall-back to the SDK's default identity. A
            reference passed as ``explicit`` is always required: the caller
            named it.
    """
    if isinstance(explicit, SecretRef) or is_reference(explicit):
        # A reference is a place to look, not a value, and one the caller named.
        name, explicit, required = explicit, None, True
    if explicit is not None:
        from authchain.clients._coerce import coerce_credential

        # Whatever a Secret task returns (SecretValue, as_dict's dict, JSON text), made one value.
        return Credential(coerce_credential(explicit), "explicit")
    if name is None:
        return Credential(None, "native default")
    label = str(name)
    found = _resolve_without(chain, own_types, name)
    if found is not None:
        value, source = found
        return Credential(value, f"chain: {source} ({label})", label)
    if required:
        raise ConfigError(
            f"[clients.{kind}] credentials {label!r} were not found by any source "
            f"(a bare name is never asked of a source of the client's own kind, and a "
            f"named credential is never replaced by the SDK's default identity)"
        )
    from authchain._sdk_credentials import refuse_native_default

    refuse_native_default(f"{kind} client", label, "the SDK's own default identity")
    return Credential(None, "native default", label)


def _resolve_without(
    chain: Chain, own_types: tuple[str, ...], name: str | SecretRef
) -> tuple[SecretValue[Any], str] | None:
    """Resolve ``name`` on ``chain``; a bare name's walk skips the client's own backend types.

    ``VAULT_TOKEN`` is never asked of a Vault source (the store the client
    opens cannot hand over the key to open it), but a reference or a pinned
    name reaches the store it names, of any kind: one AWS identity may read
    the keys of another, one Vault hold the token for another.
    """
    view = chain.without_types(own_types)
    try:
        value, attempt = view.resolve_with_source(name)
    except LookupError:
        return None
    return value, attempt.label


# -- settings -----------------------------------------------------------------


def client_settings(
    kind: str,
    chain: Chain,
    options: tuple[Option, ...],
    overrides: Mapping[str, Any],
    explanation: ClientExplanation | None = None,
) -> dict[str, Any]:
    """Call arguments (not None) over ``[clients.KIND]`` over option defaults, validated."""
    settings = chain.settings
    table = dict(settings.raw_clients.get(kind, {})) if settings is not None else {}
    known = {option.name: option for option in options}
    where = f"[clients.{kind}]"
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{where} has unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    environ = (settings.environ if settings is not None else None) or os.environ
    base_dir = settings.base_dir if settings is not None else None
    result: dict[str, Any] = {}
    for option in options:
        if overrides.get(option.name) is not None:
            result[option.name] = overrides[option.name]
            origin = "explicit"
        elif option.name in table:
            raw = expand(table[option.name], environ, f"{where} {option.name}")
            check_expanded_secret_setting(option.name, table[option.name], raw, f"{where} {option.name}")
            result[option.name] = option.coerce(raw, where, base_dir)
            origin = where
        else:
            result[option.name] = option.default
            origin = "default"
        if explanation is not None and result[option.name] is not None:
            explanation.origins[option.name] = origin
    return result


# -- the cache ------------------------------------------------------------------


def fingerprint(kind: str, settings: Mapping[str, Any], secrets: Mapping[str, Any] | None = None) -> str:
    """SHA-256 of the settings and of each credential's value: a cache key that
    tells clients apart without holding any secret."""
    digest = hashlib.sha256()
    digest.update(json.dumps([kind, dict(settings)], sort_keys=True, default=_described).encode())
    for name, value in sorted((secrets or {}).items()):
        raw = value.get_secret_value() if isinstance(value, SecretValue) else value
        digest.update(name.encode() + b"\0")
        digest.update(
            raw.encode() if isinstance(raw, str) else repr(raw).encode() if raw is not None else b""
        )
        digest.update(b"\0")
    return digest.hexdigest()


class Unfingerprintable(TypeError):
    """An argument that cannot tell two clients apart by value (its repr is an address)."""


def _described(value: Any) -> Any:
    """How an argument that JSON cannot write enters a fingerprint.

    A botocore ``Config`` by the options it was given; anything else by its
    repr, unless that repr is only an address (``<object at 0x...>``): two
    different objects could then share a key once the first is collected,
    and equal ones would never share a client. Those raise, and the factory
    builds an uncached client.
    """
    options = getattr(value, "_user_provided_options", None)
    if isinstance(options, dict):
        return {type(value).__name__: options}
    shown = repr(value)
    if " at 0x" in shown:
        raise Unfingerprintable(f"a {type(value).__name__} argument has no value-based repr")
    return shown


class _ClientCache:
    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._flights: SingleFlight[Any] = SingleFlight()

    def get_or_build(self, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._clients:
                return self._clients[key]

        def once() -> Any:
            with self._lock:
                if key in self._clients:
                    return self._clients[key]
            client = build()
            with self._lock:
                self._clients[key] = client
            return client

        return self._flights.do(key, once)

    def clear(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            closer = getattr(client, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # noqa: S112 - closing is best effort
                    continue

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)


CACHE = _ClientCache()


def clear() -> None:
    """Forget (and close, where they can be closed) every cached client."""
    CACHE.clear()


# -- lazy clients ---------------------------------------------------------------

_SECRET_ARGUMENTS = (
    "credentials",
    "token",
    "role_id",
    "secret_id",
    "jwt",
    "aws_access_key_id",  # boto3 arguments aws_client passes through
    "aws_secret_access_key",
    "aws_session_token",
)


class LazyClient(ProcessLocal):
    """A factory call to run later, in the process that uses the client.

    Pickles as the factory and its arguments only (no client, no credential),
    so it can travel to Dask or Ray workers; the first attribute access there
    builds the client through that worker's own chain and cache.
    """

    def __init__(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        for name, value in _named_arguments(factory, args, kwargs):
            if not _travels_a_credential(name, value):
                continue
            if value is not None and not parses_as_reference(value):
                del args, kwargs, value  # no frame of this error holds the value
                raise ConfigError(
                    f"lazy({factory.__name__}, ...) travels in pickles: pass {name!r} as a "
                    "reference (SecretRef or 'scheme://...') or configure it, not as a value"
                )
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._init_runtime()

    _runtime_attrs = ("_client", "_lock")

    def _init_runtime(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The client, built on first use in this process (through the factory's cache)."""
        with self._lock:
            if self._client is None:
                self._client = self._factory(*self._args, **self._kwargs)
            return self._client

    async def aget(self) -> Any:
        """:meth:`get` for async code: a first build runs in a worker thread (see :func:`abuild`)."""
        return await abuild(self.get)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in {"_factory", "_args", "_kwargs", "_client", "_lock"}:
            raise AttributeError(name)
        return getattr(self.get(), name)

    def __repr__(self) -> str:
        args = ", ".join([*(repr(a) for a in self._args), *(f"{k}=..." for k in self._kwargs)])
        return f"lazy({self._factory.__name__}{', ' if args else ''}{args})"


def _travels_a_credential(name: str, value: Any, depth: int = 0) -> bool:
    """A credential-named argument, a ``SecretValue`` or bytes anywhere, a value shaped
    like a credential (a URL with a password, a JWT, ``ghp_...``: ``looks_like_a_credential``),
    or a dict or list holding one of these (``config={"api_key": ...}``)."""
    if name in _SECRET_ARGUMENTS or _SECRET_KEY.search(name) or isinstance(value, (SecretValue, bytes)):
        return True
    if isinstance(value, str):
        from authchain._redact import looks_like_a_credential, redact_url_passwords

        return redact_url_passwords(value) != value or looks_like_a_credential(value)
    if depth < 8 and isinstance(value, Mapping):
        return any(_travels_a_credential(str(key), item, depth + 1) for key, item in value.items())
    if depth < 8 and isinstance(value, (list, tuple, set, frozenset)):
        return any(_travels_a_credential(name, item, depth + 1) for item in value)
    return False


def _named_arguments(
    factory: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """Every argument with the parameter name it binds to, positional ones included.

    ``lazy(aws_session, {...})`` must be refused like ``lazy(aws_session,
    credentials={...})``: a credential given positionally travels in the
    pickle just the same. Arguments that do not fit the factory's signature
    are refused here (the call would fail later anyway, after the pickle
    carried them); without a signature, every positional argument counts as
    a credential.

    Raises:
        ConfigError: the arguments do not match the factory's parameters
            (the message names no value).
    """
    import inspect

    label = getattr(factory, "__name__", type(factory).__name__)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return [*kwargs.items(), *(("credentials", value) for value in args)]
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        error = ConfigError(
            f"lazy({label}, ...): the arguments do not match the parameters of {label} (values not shown)"
        )
    else:
        named: list[tuple[str, Any]] = []
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                named.extend(value.items())
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                named.extend((f"*{name}", item) for item in value)
            else:
                named.append((name, value))
        return named
    del args, kwargs  # raised outside the handler, from a frame without the values
    raise error


def lazy(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> LazyClient:
    """Defer ``factory(*args, **kwargs)`` to first use; safe to pickle.

    Example:
        >>> from authchain.clients import aws_client, lazy
        >>> s3 = lazy(aws_client, "s3", region_name="eu-west-1")
        >>> s3
        lazy(aws_client, 's3', region_name=...)
    """
    return LazyClient(factory, *args, **kwargs)


async def abuild(factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``factory(*args, **kwargs)`` for async code: the client comes from a worker thread, never the loop.

    A factory's first call imports the SDK and builds the client (boto3:
    ~150 ms to import, ~70 ms per client), and every call may look its
    credentials up through the chain (a request to a secret store when the
    cached answer has expired): blocking work that would stall every other
    coroutine. Here it runs on the event loop's default executor, as
    ``asyncio.to_thread`` does (bounded, the context copied), and returns
    the same client the sync call does: one cache and one build for
    coroutines and threads alike. Cancelling the awaiting task stops the
    wait only; the build finishes and its client is cached.

    The clients themselves are the SDKs' sync clients (boto3, hvac, keyring
    and google-cloud's gRPC stub): call them from async code through
    ``asyncio.to_thread`` too, or use an async SDK of your own.

    Example:
        >>> import asyncio
        >>> from authchain.clients import abuild, keyring_backend
        >>> backend = asyncio.run(abuild(keyring_backend, "keyrings.alt.file.PlaintextKeyring"))
        >>> type(backend).__name__
        'PlaintextKeyring'
    """
    import asyncio

    return await asyncio.to_thread(factory, *args, **kwargs)


def factory_arguments(
    factory: Callable[..., Any], arguments: Mapping[str, Any], *, leave_out: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``arguments`` checked against ``factory``'s signature, with its defaults filled in.

    An ``explain_<kind>`` takes the arguments of the factory it explains; this
    is how it reads them without writing that signature out again (the two
    cannot drift apart). ``leave_out``: parameters the explanation does not
    depend on (``aws_client``'s ``service``), accepted nowhere.

    Raises:
        TypeError: an argument the factory does not take, as calling it would.
    """
    import inspect

    signature = inspect.signature(factory)
    parameters = [
        parameter
        for name, parameter in signature.parameters.items()
        if name not in leave_out and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    bound = signature.replace(parameters=parameters).bind(**arguments)
    bound.apply_defaults()
    return dict(bound.arguments)
