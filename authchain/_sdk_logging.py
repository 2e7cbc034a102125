"""Keep the SDKs' wire loggers above DEBUG when ``authchain --debug`` turns logging on.

At DEBUG, botocore dumps each signed request (``x-amz-security-token``, the
``Authorization`` header's key id, the canonical request) and each response
body; urllib3, hpack and h2 log header frames; grpc, google-auth and hvac
their requests. The masker hides what it knows, but the point of ``--debug``
is to show what authchain does, not the bytes on the wire: those loggers stay
at INFO unless asked for separately, with ``--debug-sdk`` or the environment
variable ``AUTHCHAIN_DEBUG_SDK=1``. The masking filter applies either way.

The loggers of one backend's SDK are that backend's declaration
(``SDK_LOGGERS`` in its package, read through :mod:`authchain._declarations`);
only the transports several SDKs share are listed here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from authchain._declarations import sdk_loggers as declared_sdk_loggers

__all__ = [
    "DEBUG_SDK_VARIABLE",
    "TRANSPORT_LOGGERS",
    "quiet_sdk_loggers",
    "sdk_debug_requested",
    "sdk_loggers",
]

DEBUG_SDK_VARIABLE = "AUTHCHAIN_DEBUG_SDK"

TRANSPORT_LOGGERS = (
    "urllib3",
    "requests",
    "requests_oauthlib",
    "oauthlib",
    "hpack",
    "h2",
    "h11",
    "httpx",
    "httpcore",
    "websockets",
)
"""HTTP, HTTP/2 and OAuth transports several SDKs share: logged headers and bodies."""

_TRUE = frozenset({"1", "true", "yes", "on"})


def sdk_loggers() -> tuple[str, ...]:
    """Loggers (and, through inheritance, their children) that log what goes over the wire:
    the shared transports' and those each built-in backend declares for its SDK."""
    return tuple(dict.fromkeys((*TRANSPORT_LOGGERS, *declared_sdk_loggers())))


def sdk_debug_requested(environ: Mapping[str, str]) -> bool:
    """Whether ``AUTHCHAIN_DEBUG_SDK`` asks for the SDKs' own DEBUG output."""
    return environ.get(DEBUG_SDK_VARIABLE, "").strip().lower() in _TRUE


def quiet_sdk_loggers(level: int = logging.INFO) -> None:
    """Set every SDK wire logger to ``level`` (INFO: their DEBUG records are never made).

    A level on the logger, not a handler filter: a record below it is never
    created, so nothing has to be masked and nothing is held back.
    """
    for name in sdk_loggers():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)
