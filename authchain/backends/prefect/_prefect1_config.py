"""Prefect 1's user config file, read only for its ``[context.secrets]`` table.

Prefect 1 kept local secrets there (``~/.prefect/config.toml``, or the file
``PREFECT__USER_CONFIG_PATH`` names) as well as in
``PREFECT__CONTEXT__SECRETS__<NAME>`` variables. The file is read as
authchain reads its own config (a regular file of at most 1 MiB, UTF-8,
TOML), never written, and read again on each lookup: the chain's cache is
what keeps lookups cheap, and no second copy of the values lives here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from authchain.errors import ConfigError

__all__ = ["USER_CONFIG_VARIABLE", "context_secret", "user_config_path"]

USER_CONFIG_VARIABLE = "PREFECT__USER_CONFIG_PATH"
DEFAULT_USER_CONFIG = "~/.prefect/config.toml"


def user_config_path(environ: Mapping[str, str]) -> Path:
    """Where Prefect 1 read its user config (``$VARS`` and ``~`` expanded, as Prefect 1 did)."""
    raw = environ.get(USER_CONFIG_VARIABLE) or DEFAULT_USER_CONFIG
    return Path(os.path.expandvars(raw)).expanduser()


def context_secret(name: str, environ: Mapping[str, str]) -> tuple[str, Path] | None:
    """``name``'s value in the ``[context.secrets]`` table as text, and the file; None when absent.

    A string is returned as it is (the caller JSON-decodes, as Prefect 1's
    ``Secret.get`` did); a table, array, number or boolean as JSON.

    Raises:
        ConfigError: the file exists but is not readable TOML, or
            ``context.secrets`` is not a table (the message names the file, never a value).
    """
    path = user_config_path(environ)
    if not path.is_file():
        return None
    from authchain.config import _read_toml

    data = _read_toml(path)
    context = data.get("context", {})
    secrets = context.get("secrets", {}) if isinstance(context, dict) else None
    if not isinstance(secrets, dict):
        raise ConfigError(f"{path}: context.secrets is not a table (Prefect 1 local secrets)")
    if name not in secrets:
        return None
    value: Any = secrets[name]
    if isinstance(value, str):
        return value, path
    import json  # only for a value that is not a string: rare, and off the no-file path

    try:
        return json.dumps(value), path
    except TypeError:  # a TOML date or time
        return str(value), path
