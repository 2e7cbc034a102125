"""Mounted secret files: ``DB_PASSWORD`` → the file ``DB_PASSWORD`` in a secrets directory.

The way platforms hand secrets to a process without putting them in its
environment: Docker and Compose mount each secret as ``/run/secrets/NAME``, a
Kubernetes Secret volume holds one file per key, systemd's
``LoadCredential=`` puts them under ``$CREDENTIALS_DIRECTORY``.

Three things decide how a file is read:

- **Rotation.** Kubernetes updates a Secret volume by writing the new files
  into a fresh hidden folder, pointing a ``..data_tmp`` symlink at it and
  renaming that over ``..data`` (one atomic step), then deleting the old
  folder; each visible file is a symlink through ``..data``. A reader that
  resolved the path just before the old folder was deleted finds nothing
  there: that is the swap, not a missing secret, so the read resolves the
  path again. A file is opened once and read from that open file, so an
  answer is always one whole version, old or new, never a mix.
- **Symlinks** inside the directory are followed (that is how the volume is
  built); one whose real path leaves the directory is refused, so a mounted
  folder cannot hand out ``/etc/shadow`` or a user's keys under a secret's name.
- **One trailing newline is dropped**: ``echo "$PW" > file``, ``docker secret
  create`` from a here-string and most editors end the file with a newline the
  secret never had. Only one, and nothing else: a password may end in spaces,
  and a PEM key keeps its body intact.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from authchain._limits import MAX_FILE_BYTES
from authchain.errors import BackendError, ConfigError, SourceUnavailableError
from authchain.refs import ReferenceGrammar, SecretRef, check_json_field, require
from authchain.sources.base import CheckResult, Found, Key, NotFound, Option, Source
from authchain.values import SecretValue

__all__ = ["DOCKER_SECRETS", "FilesSource", "platform_directories"]

logger = logging.getLogger(__name__)

DOCKER_SECRETS = "/run/secrets"
"""Where Docker, Compose and Swarm mount secrets (a module constant, so tests can move it)."""

CREDENTIALS_VARIABLE = "CREDENTIALS_DIRECTORY"
"""What systemd sets for a unit with ``LoadCredential=`` / ``SetCredential=``."""

NAME_TRANSFORMS = ("exact", "lower", "kebab")

DEFAULT_MAX_BYTES = 1 << 20
"""1 MiB: a Kubernetes Secret's own limit; a larger file is not a secret someone mounted."""

# How often a read resolves the path again when the file vanished between
# resolving and opening it (a ``..data`` swap). One swap needs one more try;
# the rest covers swaps in quick succession.
_SWAP_ATTEMPTS = 8


def platform_directories(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The secret directories the platform handed this process, most specific first.

    ``$CREDENTIALS_DIRECTORY`` (systemd, for this one service) when set to an
    absolute path, then ``/run/secrets`` (the container's) when it is a
    directory. The default chain includes a ``files`` source when this is not
    empty, and a ``files`` source without ``path`` reads these.
    """
    environ = os.environ if environ is None else environ
    found: list[Path] = []
    credentials = environ.get(CREDENTIALS_VARIABLE, "")
    if credentials and os.path.isabs(credentials):
        found.append(Path(credentials))
    if os.path.isdir(DOCKER_SECRETS):
        found.append(Path(DOCKER_SECRETS))
    return found


# -- references: files://NAME[#KEY] (this backend's grammar; see authchain.refs) -------


def _file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file inside a secrets directory (None: it can).

    Relative, no empty, ``.`` or ``..`` part, nothing starting with ``..``
    (Kubernetes' own ``..data`` and timestamped folders): a name reads a
    file under a configured directory and nowhere else.
    """
    if not name:
        return "the file name is empty"
    if name.startswith("/"):
        return "the file name is absolute; it is read relative to the configured directories only"
    if "\\" in name or "\x00" in name:
        return "the file name contains a backslash or NUL"
    for part in name.split("/"):
        if part in {"", ".", ".."} or part.startswith(".."):
            return "the file name has an empty, '.' or '..' part (it must stay inside the directory)"
    return None


def _reference_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    problem = _file_name_problem(location)
    require(problem is None, problem or "")
    check_json_field(fragment)
    return location


class FilesSource(Source):
    """Reads one secret per file from one or more directories, first directory first.

    Args:
        path: the directory, or several (asked in order); relative paths are
            relative to the config file's folder. Default: the platform's
            (``$CREDENTIALS_DIRECTORY``, then ``/run/secrets``), see
            :func:`platform_directories`.
        prefix: prepended to the file name after ``name_transform``.
        name_transform: ``exact`` (``DB_PASSWORD``), ``lower``
            (``db_password``, Compose's usual spelling) or ``kebab``
            (``db-password``, Kubernetes' usual key).
        strip_newline: drop one trailing newline (``\\n`` or ``\\r\\n``).
        max_bytes: a larger file is an error, not a value.
        encoding: the files' text encoding.
        environ: where ``$CREDENTIALS_DIRECTORY`` is read (a seam for tests).

    Example:
        >>> source = FilesSource(path="/run/secrets", name_transform="lower", prefix="app_")
        >>> source.key_for("DB_PASSWORD")
        'app_db_password'
    """

    type = "files"
    reference_grammar = ReferenceGrammar("files://NAME[#KEY]", _reference_location)
    rank = 250  # after Prefect, before env: see the README ("Mounted secret files")
    concurrent = False
    options = (
        Option("path", list, None, "the secrets directory, or several, asked in order"),
        Option("prefix", str, "", "prepended to every file name"),
        Option("name_transform", str, "exact", "how a name becomes a file name", choices=NAME_TRANSFORMS),
        Option("strip_newline", bool, True, "drop one trailing newline"),
        Option(
            "max_bytes",
            int,
            DEFAULT_MAX_BYTES,
            "largest file read, in bytes",
            minimum=1,
            maximum=MAX_FILE_BYTES,
        ),
        Option("encoding", str, "utf-8", "the files' text encoding"),
    )

    _seam_attrs = ("_environ",)
    _runtime_attrs = ("_lock", "_warned")  # which files were warned about: this process only

    def __init__(
        self,
        *,
        path: str | Path | Sequence[str | Path] | None = None,
        prefix: str = "",
        name_transform: str = "exact",
        strip_newline: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
        encoding: str = "utf-8",
        environ: Mapping[str, str] | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        where = f"source {self.name!r}"
        if name_transform not in NAME_TRANSFORMS:
            allowed = ", ".join(map(repr, NAME_TRANSFORMS))
            raise ConfigError(f"{where}: name_transform must be one of {allowed}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ConfigError(f"{where}: max_bytes must be a positive integer")
        self._environ = environ
        if path is None:
            self.path: tuple[Path, ...] = tuple(platform_directories(environ))
        else:
            paths = [path] if isinstance(path, (str, Path)) else list(path)
            self.path = tuple(Path(item).expanduser() for item in paths)
        self.prefix = prefix
        self.name_transform = name_transform
        self.strip_newline = strip_newline
        self.max_bytes = max_bytes
        self.encoding = encoding
        self._init_runtime()

    @classmethod
    def platform_directories(cls, environ: Mapping[str, str] | None = None) -> list[Path]:
        """What the default chain asks: see the module function :func:`platform_directories`."""
        return platform_directories(environ)

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    @classmethod
    def validate_settings(
        cls, settings: Mapping[str, Any], *, where: str, base_dir: Path | None = None
    ) -> dict[str, Any]:
        # ``path`` may be one string or a list: both are natural in TOML.
        settings = dict(settings)
        raw = settings.get("path")
        if isinstance(raw, str):
            settings["path"] = [raw]
        kwargs = super().validate_settings(settings, where=where, base_dir=base_dir)
        if "path" in kwargs:
            paths = [Path(item).expanduser() for item in kwargs["path"]]
            if not paths:
                raise ConfigError(f"{where}.path lists no directory")
            if base_dir is not None:
                paths = [item if item.is_absolute() else base_dir / item for item in paths]
            kwargs["path"] = paths
        return kwargs

    # -- names and keys ---------------------------------------------------------------

    def key_for(self, name: str) -> Key:
        if self.name_transform == "lower":
            name = name.lower()
        elif self.name_transform == "kebab":
            name = name.lower().replace("_", "-")
        return self.prefix + name

    def key_for_ref(self, ref: SecretRef) -> tuple[Key, str | None]:
        # files://NAME names the file itself: no prefix, no transform (as env:// ignores prefix).
        return ref.location, ref.field

    def describe_key(self, key: Key) -> str:
        return f"{key} in {self._directories_text()}"

    def _directories_text(self) -> str:
        return ", ".join(str(path) for path in self.path) or "no directory"

    def is_local(self) -> bool:
        return True  # a file read, no request: nothing to share or retry

    # -- reading ----------------------------------------------------------------------

    def get(self, key: Key) -> Found | NotFound:
        name = str(key)
        if not self.path:
            raise SourceUnavailableError(
                f"no secrets directory here (${CREDENTIALS_VARIABLE} is not set and "
                f"{DOCKER_SECRETS} does not exist); set path"
            )
        problem = _file_name_problem(name)
        if problem is not None:
            return NotFound(f"{name} is not a file name this source reads: {problem}")
        missing: list[str] = []
        for directory in self.path:
            found = self._read_in(directory, name)
            if found is not None:
                return found
            if not directory.is_dir():
                missing.append(f"{directory} does not exist")
        absent = f"no file {name} in {self._directories_text()}"
        return NotFound("; ".join([absent, *missing]))

    def _read_in(self, directory: Path, name: str) -> Found | None:
        """The file ``name`` under ``directory``, or None when there is none."""
        try:
            root = os.path.realpath(directory, strict=True)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BackendError(f"cannot open {directory}: {error.strerror}") from None
        if not os.path.isdir(root):
            raise BackendError(f"{directory} is not a directory")
        entry = os.path.join(directory, name)
        for _ in range(_SWAP_ATTEMPTS):
            if not os.path.lexists(entry):
                return None
            real = os.path.realpath(entry)
            if os.path.commonpath([real, root]) != root:
                raise BackendError(f"{entry} is a symlink leading outside {directory}; refused")
            data = self._read_file(real, entry, root)
            if data is None:
                continue  # resolved into a folder a ..data swap has just removed: resolve again
            self._warn_if_readable(directory, entry, data[1])
            value = self._decode(data[0], entry)
            return Found(SecretValue(value), f"{entry} exists")
        if not os.path.exists(entry):
            raise BackendError(f"{entry} is a symlink to nothing")
        raise BackendError(f"{entry} kept changing while it was read", retryable=True)

    def _read_file(self, real: str, entry: str, root: str) -> tuple[bytes, os.stat_result] | None:
        """Open ``real`` once and read it whole (None: it vanished, or became a symlink).

        ``real`` was checked to lie inside ``root``, but a folder on the way
        could have become a symlink since; where the system says which file
        an open descriptor is (Linux's ``/proc/self/fd``), that is checked too.
        """
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        flags |= getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(real, flags)
        except FileNotFoundError:
            return None
        except PermissionError:
            raise BackendError(f"cannot read {entry}: permission denied", access_denied=True) from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                return None  # the resolved path became a symlink since: resolve again
            raise BackendError(f"cannot read {entry}: {error.strerror}") from None
        try:
            opened = _opened_path(fd)
            if opened is not None and os.path.commonpath([opened, root]) != root:
                raise BackendError(f"{entry} is a symlink leading outside {root}; refused")
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                # A FIFO or a device would block or never end; a folder is no secret.
                raise BackendError(f"{entry} is not a regular file")
            chunks: list[bytes] = []
            size = 0
            while size <= self.max_bytes:
                chunk = os.read(fd, self.max_bytes + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        if size > self.max_bytes:
            raise BackendError(f"{entry} is larger than max_bytes ({self.max_bytes})")
        return b"".join(chunks), info

    def _decode(self, data: bytes, entry: str) -> str:
        if self.strip_newline:
            if data.endswith(b"\r\n"):
                data = data[:-2]
            elif data.endswith(b"\n"):
                data = data[:-1]
        try:
            return data.decode(self.encoding)
        except (UnicodeDecodeError, LookupError):
            pass
        # Raised outside the handler: a UnicodeDecodeError holds the file's bytes.
        raise BackendError(f"{entry} is not {self.encoding} text")

    def _warn_if_readable(self, directory: Path, entry: str, info: os.stat_result) -> None:
        """Warn once per file when group or others may read it in a directory the user owns.

        Only there: ``/run/secrets`` and a Kubernetes volume belong to the
        platform, which sets their modes (Docker: 0444), and the user could not
        change them; a directory the user owns is one they set up and can fix.
        """
        if not info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            return
        getuid = getattr(os, "getuid", None)
        if getuid is None:
            return  # no POSIX owners (Windows)
        try:
            owner = os.stat(directory).st_uid
        except OSError:
            return
        if owner != getuid():
            return
        with self._lock:
            if entry in self._warned:
                return
            self._warned.add(entry)
        logger.warning(
            "%s is readable by %s (mode %03o): other users of this machine can read the secret; chmod 600 it",
            entry,
            _who_may_read(info.st_mode),
            stat.S_IMODE(info.st_mode),
        )

    # -- check and settings -------------------------------------------------------------

    def check(self) -> CheckResult:
        if not self.path:
            return self.result(
                "unavailable",
                f"no secrets directory here (${CREDENTIALS_VARIABLE} is not set and "
                f"{DOCKER_SECRETS} does not exist)",
            )
        readable: list[str] = []
        missing: list[str] = []
        for directory in self.path:
            if not directory.exists():
                missing.append(str(directory))
                continue
            if not directory.is_dir():
                return self.result("misconfigured", f"{directory} is not a directory")
            try:
                count = sum(1 for entry in os.scandir(directory) if not entry.name.startswith("."))
            except OSError as error:
                return self.result("misconfigured", f"cannot list {directory}: {error.strerror}")
            readable.append(f"{directory} ({count} file{'s' if count != 1 else ''})")
        if not readable:
            # Every lookup would miss: a wrong path, not "nothing stored yet".
            return self.result("misconfigured", f"no configured directory exists: {', '.join(missing)}")
        detail = "reads " + ", ".join(readable)
        if missing:
            detail += f"; does not exist: {', '.join(missing)}"
        return self.result("ok", detail)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "path": [str(item) for item in self.path]}


def _who_may_read(mode: int) -> str:
    group, others = bool(mode & stat.S_IRGRP), bool(mode & stat.S_IROTH)
    return "group and others" if group and others else "others" if others else "its group"


def _opened_path(fd: int) -> str | None:
    """The path of the file ``fd`` is open on, where the system tells (None elsewhere)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if not target.startswith("/"):
        return None  # not a path (e.g. "pipe:[123]") or no /proc
    return target.removesuffix(" (deleted)")
