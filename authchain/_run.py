"""``authchain run``: what reaches the child's environment and what reaches the terminal.

The CLI parses and maps exceptions to exit codes; everything that decides
what the child gets lives here, because each decision is a security property
of its own (docs/security.md):

- Which variables are resolved. Every variable whose value is a reference
  (``FOO=vault://...``) is *reference-looking*; ``only`` (``--only`` or
  ``[run] only``, fnmatch patterns) narrows that to the variables the user
  chose. An unselected variable is handed over as the text it is; a selected
  one that cannot be resolved stops the run before the child starts (no
  half-resolved environment, no silent fall-through).
- What a reference from the environment may read. The environment is not the
  user's own writing in CI (a PR title, a branch name), so a reference found
  there reads files only inside the working directory, real paths compared
  (``..`` and symlinks resolved), and may not choose the host credentials go to
  (``azure-kv://OTHER-VAULT/...``: only a configured source's own vault).
- What never reaches the child: a variable named in ``scrub`` (names or
  fnmatch patterns, as for ``only``), a reference to one
  (``Y=env://VAULT_TOKEN``) or any value containing a scrubbed variable's
  value, and a token a Vault source obtained by logging in.
- The child's output is masked as a stream (:meth:`Masker.mask_stream`):
  bytes go out as soon as no later byte can turn them into a registered
  value, so memory stays bounded and work linear however the child writes.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from authchain import masking
from authchain._scrub import scrubbed
from authchain.errors import AuthChainError, BackendError, ConfigError, SecretNotFound
from authchain.refs import SecretRef, is_reference
from authchain.values import SecretValue

if TYPE_CHECKING:
    from authchain._chain import Chain

__all__ = ["build_environment", "pump", "run_command", "selected"]

_READ_SIZE = 1 << 16
# Values shorter than this are not searched for inside other values: a scrubbed
# "true" or "1" would match innocent text everywhere. Real credentials are longer.
_MIN_COMPARED = 8


def selected(name: str, only: Sequence[str] | None) -> bool:
    """Is the variable ``name`` one the user asked to resolve? (``None``: every one.)"""
    return only is None or any(fnmatch.fnmatchcase(name, pattern) for pattern in only)


@scrubbed
def build_environment(
    environ: Mapping[str, str],
    chain_factory: Callable[[], Chain],
    *,
    scrub: Iterable[str] = (),
    only: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> dict[str, str]:
    """The child's environment: ``environ`` with the selected references resolved.

    ``chain_factory`` is called only when some variable looks like a
    reference (a broken config does not stop a run that resolves nothing);
    when ``only`` is None the chain's ``[run] only`` applies. Raises
    ConfigError (a refusal, a malformed reference), SecretNotFound or
    BackendError; nothing it raises quotes a value.
    """
    environment = dict(environ)  # taken before anything resolves: what an SDK sets later stays out
    scrub = list(scrub)
    # Names or fnmatch patterns, as for ``only``: a pattern taken as a literal name
    # would match nothing and leave the credentials it meant in place, silently.
    scrubbed_values = {name: environment.pop(name) for name in list(environment) if selected(name, scrub)}
    scrubbed_names = set(scrub)
    looking = {name: value for name, value in environment.items() if is_reference(value)}
    chain: Chain | None = None
    if looking and only is None:  # the config's [run] only applies
        chain = chain_factory()
        only = _configured_only(chain)
    chosen = {name: value for name, value in looking.items() if selected(name, only)}
    if chosen:
        chain = chain or chain_factory()
        references = {name: _parse(name, text) for name, text in sorted(chosen.items())}
        for name, ref in references.items():
            _check_reference(name, ref, chain, scrubbed_names, cwd or Path.cwd())
        try:
            resolved = chain.resolve_many(sorted({str(ref) for ref in references.values()}))
        except AuthChainError as error:
            raise _unquoted(error, references) from None
        for name, ref in references.items():
            text = _as_text(resolved[str(ref)], name)
            environment[name] = text
            masking.default_masker.add(text)
    _refuse_credentials(environment, scrubbed_values, chain)
    return environment


def _parse(name: str, text: str) -> SecretRef:
    try:
        return SecretRef.parse(text)
    except ConfigError as error:
        raise ConfigError(f"{name}: {error}") from None


_NOT_SHOWN = (
    "the reference is not shown: `run` took it from the environment, where it may be text "
    "others wrote or a secret pasted by mistake"
)


def _unquoted(error: AuthChainError, references: Mapping[str, SecretRef]) -> AuthChainError:
    """``error`` of resolving ``references``, naming their variables instead of quoting them.

    A not-found always quotes the reference (and its trail the keys each
    source asked for); a backend or config error keeps its own text only
    when no part of any reference is in it. The class stays, so the exit
    code does. ``authchain explain "$VAR"`` shows the rest, when the user
    chooses to.
    """
    if isinstance(error, SecretNotFound):
        missing = set(error.missing)
        names = [name for name, ref in references.items() if str(ref) in missing] or list(references)
        sources = ", ".join(
            dict.fromkeys(attempt.label for attempt in error.attempts if attempt.source != "explicit")
        )
        asked = f" (sources asked: {sources})" if sources else ""
        return _UnquotedNotFound(
            names[0], f"{_variables(names)} no source could resolve{asked}; {_NOT_SHOWN}. {_explain(names)}"
        )
    if not _quotes(str(error), references.values()):
        return error
    names = list(references)
    if isinstance(error, BackendError):
        what = "access denied" if error.access_denied else "the source failed"
        where = f"{error.source}: " if error.source else ""
        return BackendError(
            f"{_variables(names)} could not be read ({where}{what}); {_NOT_SHOWN}. {_explain(names)}",
            retryable=error.retryable,
            access_denied=error.access_denied,
            retry_after=error.retry_after,
        )
    return type(error)(f"{_variables(names)} cannot be used; {_NOT_SHOWN}. {_explain(names)}")


class _UnquotedNotFound(SecretNotFound):
    """A ``SecretNotFound`` that names the variable and keeps its own message (no attempt trail:
    it would show the keys each source asked for), also after a pickle."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name)
        self.args = (message,)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name, self.args[0]))


def _variables(names: Sequence[str]) -> str:
    if len(names) == 1:
        return f"{names[0]} holds a reference that"
    return f"one of {', '.join(names)} holds a reference that"


def _explain(names: Sequence[str]) -> str:
    return f'To see every source\'s answer: authchain explain "${names[0]}"'


def _quotes(text: str, references: Iterable[SecretRef]) -> bool:
    """Whether ``text`` shows any part of a reference (its location's parts, its key, the whole)."""
    folded = text.casefold()
    for ref in references:
        parts = [str(ref), ref.location, *re.split(r"[/:.?#=&@]+", ref.location)]
        parts += [ref.fragment or "", *(value for _, value in ref.params)]
        if any(len(part) >= 3 and part.casefold() in folded for part in parts):
            return True
    return False


def _configured_only(chain: Chain) -> list[str] | None:
    settings = chain.settings
    run = getattr(settings, "run", None) or {}
    only = run.get("only")
    return list(only) if only is not None else None


def _check_reference(name: str, ref: SecretRef, chain: Chain, scrubbed: set[str], cwd: Path) -> None:
    """Refuse, before anything is read, a reference to a scrubbed variable, to a file outside ``cwd``,
    or to a host no configured source has as its endpoint (it would get that source's token)."""
    if ref.scheme == "env":
        folded = ref.location.casefold()  # an env source may match names case-insensitively
        hit = next(
            (scrub for scrub in sorted(scrubbed) if fnmatch.fnmatchcase(folded, scrub.casefold())), None
        )
        if hit is not None:
            raise ConfigError(
                f"{name} refers to {hit}, which --scrub keeps from the command; "
                "a scrubbed variable never reaches it, not even through a reference"
            )
    try:  # both ask the reference's source to read it, which may refuse it quoting it
        endpoint = chain.foreign_endpoint_of(ref)
        path = _file_read_by(ref, chain)
    except AuthChainError as error:
        raise _unquoted(error, {name: ref}) from None
    if endpoint is not None:  # the host is the reference's own text: named, not quoted
        raise ConfigError(
            f"{name} is a {ref.scheme}:// reference that would send credentials to a host no "
            "configured source has as its own; references taken from the environment may not choose "
            "where credentials go (CI puts text others wrote into variables): configure a source for it"
        )
    if path is not None and not _inside(path, cwd):
        raise ConfigError(
            f"{name} is a {ref.scheme}:// reference to a file outside the working directory; "
            "references taken from the environment read files only inside it "
            "(CI puts text others wrote into variables)"
        )


def _file_read_by(ref: SecretRef, chain: Chain) -> Path | None:
    """The file a reference would read, as its source would open it (None: not a file)."""
    if ref.scheme != "dotenv":
        return None
    source = chain.source_for_reference(ref)
    key, _ = source.key_for_ref(ref)
    path = key[0] if isinstance(key, tuple) else key
    return Path(str(path)).expanduser()


def _inside(path: Path, folder: Path) -> bool:
    real = os.path.realpath(path)  # '..' and every symlink on the way resolved
    root = os.path.realpath(folder)
    return os.path.commonpath([real, root]) == root


def _refuse_credentials(
    environment: Mapping[str, str], scrubbed: Mapping[str, str], chain: Chain | None
) -> None:
    """No variable may carry a scrubbed variable's value or a Vault login token, however it got there."""
    forbidden: list[tuple[str, str]] = [
        (value, f"the value of the scrubbed variable {name}")
        for name, value in scrubbed.items()
        if len(value) >= _MIN_COMPARED
    ]
    forbidden += [(token, what) for token, what in _login_tokens(chain) if len(token) >= _MIN_COMPARED]
    for name, value in sorted(environment.items()):
        for credential, what in forbidden:
            if credential in value:
                raise ConfigError(
                    f"{name} holds {what}; refusing to start the command with it "
                    "(scrub that variable too, or resolve it from elsewhere)"
                )


def _login_tokens(chain: Chain | None) -> list[tuple[str, str]]:
    """Tokens the chain's Vault sources obtained by logging in (AppRole, JWT, Kubernetes)."""
    if chain is None:
        return []
    found = []
    for source in (*chain.sources, *chain.reference_sources):
        token = getattr(source, "_session_token", None)
        if isinstance(token, str) and token and getattr(source, "auth", "token") != "token":
            found.append((token, f"the token source {source.name!r} obtained by logging in"))
    return found


@scrubbed
def _as_text(value: SecretValue[Any], name: str) -> str:
    secret: str | bytes = value.get_secret_value()
    if isinstance(secret, bytes):
        try:
            return secret.decode("utf-8")
        except UnicodeDecodeError:
            pass  # the error holds the bytes: raised below, outside the handler, without it
        raise ConfigError(f"{name} resolved to binary data, which cannot go into an environment variable")
    if "\x00" in secret:
        raise ConfigError(
            f"{name} resolved to a value containing NUL, which cannot go into an environment variable"
        )
    return secret


def run_command(argv: Sequence[str], environment: Mapping[str, str], *, mask: bool = True) -> int:
    """Start ``argv``, copy its output through the masker, return its (shell-style) exit code."""
    try:
        if not mask:
            return _wait(subprocess.Popen(list(argv), env=dict(environment)))
        child = subprocess.Popen(
            list(argv), env=dict(environment), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        sys.stderr.write(f"authchain: error: command not found: {argv[0]}\n")
        return 127
    except PermissionError:
        sys.stderr.write(f"authchain: error: permission denied: {argv[0]}\n")
        return 126
    assert child.stdout is not None
    assert child.stderr is not None
    masker = masking.default_masker
    pumps = [
        threading.Thread(target=pump, args=(child.stdout, sys.stdout, masker), daemon=True),
        threading.Thread(target=pump, args=(child.stderr, sys.stderr, masker), daemon=True),
    ]
    for thread in pumps:
        thread.start()
    code = _wait(child)
    for thread in pumps:
        thread.join()
    return code


def _wait(child: subprocess.Popen[bytes]) -> int:
    """Wait for the child, forwarding Ctrl-C and SIGTERM to it; shell-style exit code."""

    def forward(signum: int, frame: Any) -> None:
        child.send_signal(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: nothing to forward
            previous[signum] = signal.signal(signum, forward)
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


def pump(source: IO[bytes], target: IO[Any], masker: masking.Masker) -> None:
    """Copy a child's stream to ``target``, masked, with bounded memory.

    Each read is masked together with the bytes held back from the last one
    and written at once, except the tail where a registered form may still
    begin (:meth:`Masker.mask_stream`: fewer bytes than the longest form, none
    after a newline for most values). That tail waits for more output or the
    end of it, never for a timer: a value the child writes in pieces, slowly
    or in blocks whose boundary falls inside it, comes out masked.
    """
    out: IO[bytes] | None = getattr(target, "buffer", None)
    fd = source.fileno()
    held = b""

    def emit(data: bytes) -> None:
        if not data:
            return
        if out is not None:
            out.write(data)
            out.flush()
        else:  # a replaced sys.stdout without a buffer
            target.write(data.decode("utf-8", "replace"))
            target.flush()

    try:
        while True:
            chunk = os.read(fd, _READ_SIZE)
            if not chunk:
                break
            data = held + chunk if held else chunk
            masked, consumed = masker.mask_stream(data)
            emit(masked)
            held = data[consumed:]
        emit(masker.mask_stream(held, final=True)[0])
    finally:
        source.close()
