"""SDK exceptions, made safe to keep: what a source's failure leaves behind.

A source is expected to translate its SDK's exceptions into
:class:`~authchain.errors.BackendError`; the SDK's own exception then rides
along as ``__cause__``, and one may escape untranslated. Either way it can
carry request and response data (headers, a parsed body, a value just
fetched). ``authchain._trail.guarded`` turns an escaped exception into a
``BackendError`` of that source without its text; :func:`scrub_cause`
replaces an exception chain by stand-ins holding only the type name, the
masked text and the traceback lines, so a logged or re-raised error keeps no
payload. Imported on the error path only, so it costs nothing at start-up.
"""

from __future__ import annotations

from authchain import masking
from authchain.errors import AuthChainError, UpstreamError

__all__ = ["scrub_cause", "type_name"]

# An SDK message past this length is cut: it is evidence, not a payload.
_MAX_TEXT = 500


def scrub_cause(error: BaseException | None, depth: int = 0) -> BaseException | None:
    """A copy of an exception chain that is safe to keep and print.

    authchain's own errors stay (their messages never hold values); anything
    else becomes an :class:`UpstreamError` with the original's type name,
    its masked text and its traceback, so request objects, headers and
    response bodies an SDK exception carries are left behind.
    """
    if error is None or depth > 8:
        return None
    if isinstance(error, (AuthChainError, UpstreamError)):
        clean = error
    else:
        try:
            text = str(error)
        except Exception:
            text = ""
        text = " ".join(masking.default_masker.mask(text).split())
        clean = UpstreamError(type_name(error), text[:_MAX_TEXT] + ("..." if len(text) > _MAX_TEXT else ""))
        clean.__traceback__ = error.__traceback__
    cause, context = error.__cause__, error.__context__
    clean.__cause__ = scrub_cause(cause, depth + 1) if cause is not None else None
    clean.__context__ = scrub_cause(context, depth + 1) if context is not None else None
    clean.__suppress_context__ = error.__suppress_context__
    return clean


def type_name(error: BaseException) -> str:
    """``module.Qualname`` of the error's type (builtins bare)."""
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
