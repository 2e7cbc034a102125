"""The exceptions authchain raises, and what each one means for the caller.

::

    Exception
     └── AuthChainError                 anything authchain raises on purpose
          ├── ConfigError (ValueError)   bad config, bad reference, missing extra
          ├── SecretNotFound (LookupError)
          │                              no source had the name; lists each attempt
          ├── BackendError               a source failed (unreachable, denied,
          │                              throttled, bad data); never a "miss"
          ├── SourceUnavailableError     a source cannot run here (no keyring
          │                              backend, SDK missing); the chain reports
          │                              it and moves on as if "not found"
          └── ChainClosedError           the chain was closed before or during
                                         the lookup; build a new one

The split follows azure-identity: *unavailable* moves the chain on, any
other failure stops it (unless the source is configured ``on_error = "skip"``).
No message ever contains a secret value: messages name keys, paths and sources.

An SDK's exception never travels on in a ``BackendError``'s cause chain: the
chain replaces it with an :class:`UpstreamError` (its type name, its masked
text and its traceback), since SDK exceptions carry request and response
objects (headers with tokens, echoed parameters, bodies).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from authchain.values import Attempt

__all__ = [
    "AuthChainError",
    "BackendError",
    "ChainClosedError",
    "ConfigError",
    "SecretNotFound",
    "SourceUnavailableError",
]


class AuthChainError(Exception):
    """Base class of every error authchain raises on purpose.

    The password of any URL in the message (``https://user:PW@host``) is
    redacted here, whoever wrote the message.
    """

    def __init__(self, *args: object) -> None:
        from authchain._redact import redact_url_passwords

        super().__init__(*(redact_url_passwords(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(AuthChainError, ValueError):
    """The configuration, a reference or an argument is wrong, or an extra is missing.

    Raised before any backend is asked, so fixing the input is always the cure.
    """


class SecretNotFound(AuthChainError, LookupError):
    """No source had the name. ``attempts`` holds what every source said."""

    def __init__(
        self,
        name: str,
        attempts: Sequence[Attempt] = (),
        *,
        missing: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        self.missing: tuple[str, ...] = tuple(missing) or (name,)
        super().__init__(self._format())

    def _format(self) -> str:
        others = [other for other in self.missing if other != self.name]
        also = f" (also missing: {', '.join(others)})" if others else ""
        lines = [f"{self.name!r} was not found by any source{also}."]
        if self.attempts:
            lines.append("Attempted sources:")
            lines.extend(f"    {attempt.line()}" for attempt in self.attempts)
        lines.append(f"See `authchain explain {self.name}`.")
        return "\n".join(lines)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_not_found, (self.name, self.attempts, self.missing))


class BackendError(AuthChainError):
    """A source failed to answer: unreachable, access denied, throttled or bad data.

    Attributes:
        source: the source instance name (``"vault-prod"``), or None when raised
            by a source before the chain attached its name.
        retryable: whether trying again may help (connection errors, 5xx, throttling).
        access_denied: the backend refused; never retried.
        retry_after: seconds the backend asked to wait before trying again
            (HTTP ``Retry-After`` on a 429 or 503), or None. The chain's retry
            waits at least that long, and does not retry when the wait would
            run past the lookup's deadline.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        retryable: bool = False,
        access_denied: bool = False,
        retry_after: float | None = None,
    ) -> None:
        from authchain._redact import redact_url_passwords

        self.message = redact_url_passwords(message)
        self.source = source
        self.access_denied = access_denied
        self.retryable = retryable and not access_denied
        self.retry_after = retry_after
        super().__init__(f"{source}: {message}" if source else message)

    def with_source(self, source: str, suffix: str = "", *, label: str | None = None) -> BackendError:
        """Return a copy that names ``source`` (the chain adds it; sources need not).

        ``label`` (``"vault-prod (vault)"``) is what the message shows; ``.source``
        stays the bare instance name.
        """
        copy = BackendError(
            self.message + suffix,
            source=source,
            retryable=self.retryable,
            access_denied=self.access_denied,
            retry_after=self.retry_after,
        )
        if label:
            copy.args = (f"{label}: {copy.message}",)
        copy.__cause__ = self.__cause__
        return copy

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_backend_error,
            (self.message, self.source, self.retryable, self.access_denied, self.retry_after),
        )


def _rebuild_not_found(name: str, attempts: tuple[Attempt, ...], missing: tuple[str, ...]) -> SecretNotFound:
    return SecretNotFound(name, attempts, missing=missing)


def _rebuild_backend_error(
    message: str, source: str | None, retryable: bool, access_denied: bool, retry_after: float | None = None
) -> BackendError:
    return BackendError(
        message, source=source, retryable=retryable, access_denied=access_denied, retry_after=retry_after
    )


class SourceUnavailableError(AuthChainError):
    """The source cannot work in this environment; the chain treats it as a miss."""


class ChainClosedError(AuthChainError):
    """The chain was closed (``close()``, or the end of its ``with`` block).

    A closed chain stays closed, as a closed httpx or botocore client does:
    every lookup on it raises this, and so does a lookup that was still
    running when ``close()`` was called, rather than reopening clients and a
    thread pool that nobody would close again. Build a new chain instead.
    """


class UpstreamError(Exception):
    """Stands in for an exception an SDK raised, in the cause chain of a ``BackendError``.

    Keeps what helps debugging (the original's type name, its text with known
    values masked, its traceback) and drops the object itself.
    """

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        super().__init__(f"{type_name}: {message}" if message else f"{type_name} (message not shown)")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_upstream, (self.type_name, self.args[0]))


def _rebuild_upstream(type_name: str, text: str) -> UpstreamError:
    error = UpstreamError(type_name, "")
    error.args = (text,)
    return error
