"""Which config files may send the user's credentials where they say: the trust store.

A config file found by searching upwards from the working directory is input
from whoever wrote that folder: a cloned repository, an unpacked archive, a
CI checkout of a pull request. Such a file may still configure the chain, but
a source whose endpoint it names (a Vault ``url``, an AWS ``endpoint_url``, a
GCP ``endpoint``, the TLS settings that decide whom a Vault URL is) gets no
credentials at all until the user trusts the file once, as ``direnv allow``
does: ``authchain trust [PATH]`` records the file's real path and the SHA-256
of its contents in a per-user store. Any change to the file makes it
untrusted again. A file the user names (``AUTHCHAIN_CONFIG``, ``--config``, a
path passed to ``Chain.from_config``) is trusted as named.

The store is ``$XDG_CONFIG_HOME/authchain/trusted.json`` (default
``~/.config/authchain/trusted.json``), written atomically, readable by its
owner only. A store that cannot be read trusts nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from authchain.errors import ConfigError

__all__ = ["TrustStatus", "digest", "is_trusted", "revoke", "store_path", "trust"]

TrustStatus = Literal["named", "trusted", "untrusted", "no file"]
"""How a config file came to be used: named by the user, found and trusted,
found and not trusted (or changed since it was trusted), or no file at all."""

STORE_VERSION = 1


def store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/authchain/trusted.json``, else ``~/.config/authchain/trusted.json``."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path(environ.get("HOME") or Path.home()) / ".config"
    return root / "authchain" / "trusted.json"


def _digest_of(path: Path) -> str:
    return digest(path)


def digest(path: Path) -> str:
    """SHA-256 of the file's bytes: what was trusted is exactly what is read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None


def is_trusted(path: Path, environ: Mapping[str, str] | None = None, *, digest: str | None = None) -> bool:
    """Whether ``path``, with its current contents, is in the user's trust store.

    ``digest``: the SHA-256 of the bytes the caller already read and parsed
    (the config loader passes it), so the contents judged are exactly the
    contents used; read again otherwise.
    """
    entry = _load(environ).get(_key(path))
    if not isinstance(entry, dict):
        return False
    return entry.get("sha256") == (digest if digest is not None else _digest_of(path))


def trust(path: Path, environ: Mapping[str, str] | None = None) -> str:
    """Record ``path`` and its current SHA-256 in the trust store; returns the digest."""
    if not path.is_file():
        raise ConfigError(f"{path} is not a file")
    files = _load(environ)
    value = digest(path)
    files[_key(path)] = {"sha256": value, "trusted_at": datetime.now(timezone.utc).isoformat()}
    _save(files, environ)
    return value


def revoke(path: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Forget ``path``; False when it was not in the store."""
    files = _load(environ)
    if files.pop(_key(path), None) is None:
        return False
    _save(files, environ)
    return True


def _key(path: Path) -> str:
    # The real path: a symlink or a relative spelling is the same file.
    return str(Path(path).expanduser().resolve())


def _load(environ: Mapping[str, str] | None) -> dict[str, Any]:
    try:
        data = json.loads(store_path(environ).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or unreadable: nothing is trusted
    files = data.get("files") if isinstance(data, dict) else None
    return dict(files) if isinstance(files, dict) else {}


def _save(files: dict[str, Any], environ: Mapping[str, str] | None) -> None:
    target = store_path(environ)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".trusted-", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:  # mkstemp: mode 0600
                json.dump({"version": STORE_VERSION, "files": files}, stream, indent=2, sort_keys=True)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise ConfigError(f"cannot write the trust store {target}: {error.strerror}") from None
