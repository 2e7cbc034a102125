"""The largest value each numeric setting accepts, and the one message that says so.

Every number a config file (or ``AUTHCHAIN_*``, or a ``Chain(...)`` call)
sets has an upper bound, so a typo (``retries = 1000000000``,
``max_workers = 100000000``) is a ``ConfigError`` naming the setting and the
range instead of a process that retries for ever, or sleeps for days, or
has no cap on its threads. The bounds are far above any real use; where an
SDK has a default of its own, the bound is above that default:

- retries: 100. botocore's retry modes default to 3 (standard) and 5
  (legacy) attempts, azure-core's ``retry_total`` to 10; ``deadline`` caps
  the time a lookup's retries take, so the bound only has to catch a typo.
- backoff: 60 s base delay; backoff_max: 600 s (azure-core's
  ``retry_backoff_max`` defaults to 120 s, gRPC's reconnect backoff to 120 s).
- deadline: one hour per lookup.
- timeouts of one request: 300 s (hvac's default is 30 s, botocore's connect
  and read timeouts 60 s, azure-core's transport 300 s).
- caches: a found value a week (``cache_ttl``, ``stale_if_error``); a
  "not found" or an SSM path snapshot a day.
- threads: 256 per pool. ``ThreadPoolExecutor``'s own default is
  ``min(32, cpu + 4)``; every thread costs a stack, and each one is a
  connection open to a backend.
- bytes of one mounted secret file: 64 MiB (a Kubernetes Secret holds at
  most 1 MiB).

Messages never quote the value given: a secret pasted under the wrong key,
or a ``${VAR}`` that holds one, must not be printed back.
"""

from __future__ import annotations

from authchain.errors import ConfigError

__all__ = [
    "CHAIN_RANGES",
    "MAX_BACKOFF_MAX_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "MAX_CACHE_SECONDS",
    "MAX_DEADLINE_SECONDS",
    "MAX_FILE_BYTES",
    "MAX_NEGATIVE_SECONDS",
    "MAX_RETRIES",
    "MAX_TIMEOUT_SECONDS",
    "MAX_WORKERS",
    "check_range",
    "range_text",
]

MAX_RETRIES = 100
MAX_BACKOFF_SECONDS = 60.0
MAX_BACKOFF_MAX_SECONDS = 600.0
MAX_DEADLINE_SECONDS = 3600.0
MAX_TIMEOUT_SECONDS = 300.0
MAX_CACHE_SECONDS = 7 * 24 * 3600.0
MAX_NEGATIVE_SECONDS = 24 * 3600.0
MAX_WORKERS = 256
MAX_FILE_BYTES = 64 * 1024 * 1024


def number_text(number: float) -> str:
    """``604800.0`` -> ``"604800"``, ``0.1`` -> ``"0.1"`` (``:g`` would write ``6.71089e+07``)."""
    if float(number).is_integer():
        return str(int(number))
    return repr(float(number))


def range_text(minimum: float | None, maximum: float | None) -> str:
    """``">= 0 and <= 10"``: the allowed range as every message says it."""
    parts = []
    if minimum is not None:
        parts.append(f">= {number_text(minimum)}")
    if maximum is not None:
        parts.append(f"<= {number_text(maximum)}")
    return " and ".join(parts)


CHAIN_RANGES: dict[str, tuple[float, float]] = {
    "cache_ttl": (0, MAX_CACHE_SECONDS),
    "negative_ttl": (0, MAX_NEGATIVE_SECONDS),
    "stale_if_error": (0, MAX_CACHE_SECONDS),
    "retries": (0, MAX_RETRIES),
    "backoff": (0, MAX_BACKOFF_SECONDS),
    "backoff_max": (0, MAX_BACKOFF_MAX_SECONDS),
    "max_workers": (1, MAX_WORKERS),
    "async_workers": (1, MAX_WORKERS),
    "deadline": (0, MAX_DEADLINE_SECONDS),
}
"""The range of each chain-wide setting: the config's top-level ``Option``s and a ``Chain(...)``
built in code both check these, so the two cannot disagree."""


def check_range(key: str, value: float, minimum: float | None, maximum: float | None) -> None:
    """Raise ``ConfigError("KEY must be >= MIN and <= MAX")`` unless ``value`` is in range.

    ``not value >= minimum`` (rather than ``value < minimum``) also refuses NaN.
    """
    if (minimum is not None and not value >= minimum) or (maximum is not None and not value <= maximum):
        raise ConfigError(f"{key} must be {range_text(minimum, maximum)}")
