"""Leave no plain value in the frames of a raised error.

Error reporters show the local variables of every frame in a traceback
(Sentry, rich, ``pytest --showlocals``,
``traceback.TracebackException(..., capture_locals=True)``), and a function
that parsed a JSON secret holds the parsed dict in a local while it raises
"missing field". A message that names no value is not enough: the frames
must not hold one either.

:func:`scrubbed` wraps such a function: when it raises, every finished frame
of the error's traceback (the function's own and everything it called) and
of its ``__cause__``/``__context__`` chain has its locals cleared
(``frame.clear()``), and the wrapper drops the arguments it passed on before
re-raising. Tracebacks keep their lines (file, line number, code); only the
locals go. Frames still running (the callers) and suspended generators or
coroutines are left alone: clearing those would finalize them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["clear_frames", "scrubbed"]

F = TypeVar("F", bound=Callable[..., Any])

# CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE (inspect's flags,
# written out: importing inspect costs milliseconds at start-up).
_SUSPENDABLE = 0x20 | 0x80 | 0x200 | 0x100


def clear_frames(error: BaseException | None) -> None:
    """Clear the locals of every finished frame in ``error``'s tracebacks, causes and contexts."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 64:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if not frame.f_code.co_flags & _SUSPENDABLE:
                # RuntimeError: still executing, a caller's frame, not ours to clear.
                with contextlib.suppress(RuntimeError):
                    frame.clear()
            tb = tb.tb_next
        pending.append(current.__cause__)
        pending.append(current.__context__)


def scrubbed(function: F) -> F:
    """Decorate a function that holds plain values: its errors leave no frame holding one."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except BaseException as error:
            del args, kwargs  # this frame stays in the traceback: no arguments in it
            clear_frames(error)
            raise

    wrapper.__authchain_scrubbed__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
