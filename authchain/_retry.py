"""Retry with capped exponential backoff and full jitter.

Hand-written rather than tenacity: the policy is ten lines, it must take
its clock, sleep and jitter as seams (tests count attempts and delays without
waiting), and the happy path must not pay an extra import.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from authchain.errors import BackendError

__all__ = ["RetryPolicy", "call_with_retry"]

logger = logging.getLogger("authchain")

T = TypeVar("T")

Jitter = Callable[[float, float], float]


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first; delay ``jitter(0, min(cap, base * 2**n))``."""

    retries: int = 2
    backoff: float = 0.2
    backoff_max: float = 5.0

    def delay(self, attempt: int, jitter: Jitter) -> float:
        """Full jitter (AWS architecture blog): spreads retries of many clients apart."""
        ceiling = min(self.backoff_max, self.backoff * (2**attempt))
        return jitter(0.0, ceiling)


def call_with_retry(
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    jitter: Jitter = random.uniform,
    label: str = "",
) -> T:
    """Run ``operation``; retry retryable ``BackendError``s, then re-raise the last.

    Access denied and other non-retryable errors are raised at once. The
    raised error carries ``attempts`` (how many calls were made).
    """
    attempt = 0
    while True:
        try:
            return operation()
        except BackendError as error:
            error.attempts = attempt + 1  # type: ignore[attr-defined]
            if not error.retryable or attempt >= policy.retries:
                raise
            delay = policy.delay(attempt, jitter)
            logger.debug(
                "%s: retryable error (attempt %d of %d), retrying in %.3fs: %s",
                label,
                attempt + 1,
                policy.retries + 1,
                delay,
                error.message,
            )
            sleep(delay)
            attempt += 1
