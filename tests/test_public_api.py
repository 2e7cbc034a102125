"""The public surface: ``__all__`` is pinned, every name exists, import loads no SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import authchain
from authchain import errors

# The contract in DESIGN.md plus the few names the package adds on purpose.
# Changing this list is a change to what users may rely on: do it deliberately.
EXPECTED_ALL = [
    "AuthChainError",
    "BackendError",
    "Chain",
    "ConfigError",
    "Explanation",
    "SecretNotFound",
    "SecretRef",
    "SecretValue",
    "SourceUnavailableError",
    "__version__",
    "aexplain",
    "aresolve",
    "aresolve_many",
    "explain",
    "install_log_masking",
    "resolve",
    "resolve_many",
]

# The names DESIGN.md "Contract" promises on `authchain` itself.
DESIGN_CONTRACT = {
    "resolve",
    "resolve_many",
    "aresolve",
    "aresolve_many",
    "explain",
    "Chain",
    "SecretValue",
    "SecretRef",
    "AuthChainError",
    "SecretNotFound",
    "BackendError",
    "ConfigError",
}

SDK_PREFIXES = (
    "boto3",
    "botocore",
    "hvac",
    "google",
    "azure",
    "msal",
    "keyring",
    "prefect",
    "requests",
    "dotenv",
    "pydantic",
    "dask",
    "distributed",
)


def test_all_is_pinned() -> None:
    assert sorted(authchain.__all__) == sorted(EXPECTED_ALL)
    assert len(set(authchain.__all__)) == len(authchain.__all__)


def test_design_contract_is_exported() -> None:
    assert set(authchain.__all__) >= DESIGN_CONTRACT


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_exported_member_exists(name: str) -> None:
    assert hasattr(authchain, name)
    member = getattr(authchain, name)
    if name != "__version__":
        assert callable(member)
        assert member.__module__.startswith("authchain")


def test_public_names_are_exported() -> None:
    """Every public attribute that is not a submodule is listed in ``__all__`` (httpx's check)."""
    import types

    public = {
        name
        for name, value in vars(authchain).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(authchain.__all__)


def test_version_is_a_string() -> None:
    assert isinstance(authchain.__version__, str)
    assert authchain.__version__.count(".") >= 1


def test_contract_signatures() -> None:
    import inspect

    resolve = inspect.signature(authchain.resolve)
    assert next(iter(resolve.parameters)) == "name"
    for keyword in ("explicit", "default", "chain"):
        assert resolve.parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY
    assert (
        inspect.signature(authchain.resolve_many).parameters["chain"].kind is inspect.Parameter.KEYWORD_ONLY
    )
    assert inspect.signature(authchain.explain).parameters["chain"].kind is inspect.Parameter.KEYWORD_ONLY
    from_config = inspect.signature(authchain.Chain.from_config)
    assert next(iter(from_config.parameters)) == "path"
    assert from_config.parameters["path"].default is None
    assert from_config.parameters["profile"].kind is inspect.Parameter.KEYWORD_ONLY
    assert callable(authchain.SecretRef.parse)
    assert callable(authchain.SecretValue.get_secret_value)


# -- the exception tree ---------------------------------------------------------------


def test_exception_tree() -> None:
    assert issubclass(authchain.AuthChainError, Exception)
    assert issubclass(authchain.ConfigError, ValueError)
    assert issubclass(authchain.SecretNotFound, LookupError)
    for exc in (
        authchain.ConfigError,
        authchain.SecretNotFound,
        authchain.BackendError,
        authchain.SourceUnavailableError,
    ):
        assert issubclass(exc, authchain.AuthChainError)
    assert issubclass(errors.ChainClosedError, authchain.AuthChainError)
    assert not issubclass(errors.ChainClosedError, (authchain.BackendError, LookupError, ValueError))
    assert not issubclass(authchain.BackendError, LookupError)
    assert not issubclass(authchain.SourceUnavailableError, LookupError)
    assert not issubclass(authchain.SecretNotFound, ValueError)


def test_errors_module_names_the_same_classes() -> None:
    assert errors.AuthChainError is authchain.AuthChainError
    assert errors.ConfigError is authchain.ConfigError
    assert errors.SecretNotFound is authchain.SecretNotFound
    assert errors.BackendError is authchain.BackendError
    assert errors.SourceUnavailableError is authchain.SourceUnavailableError
    assert set(errors.__all__) == {
        "AuthChainError",
        "BackendError",
        "ChainClosedError",
        "ConfigError",
        "SecretNotFound",
        "SourceUnavailableError",
    }


def test_secret_not_found_is_caught_as_lookup_error() -> None:
    with pytest.raises(LookupError):
        raise authchain.SecretNotFound("SOME_NAME")
    with pytest.raises(ValueError, match="bad input"):
        raise authchain.ConfigError("bad input")


# -- import cost -------------------------------------------------------------------------


def _imported_modules(code: str, cwd: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                modules.append(name)
    return modules


def test_import_loads_no_sdk(tmp_path: Path) -> None:
    # Run from an empty folder so importing cannot pick up a config file by accident.
    modules = _imported_modules("import authchain", tmp_path)
    assert "authchain" in modules
    assert "authchain.values" in modules
    offending = sorted(
        name for name in modules if any(name == p or name.startswith(p + ".") for p in SDK_PREFIXES)
    )
    assert offending == []


def test_importtime_parser_sees_sdk_imports(tmp_path: Path) -> None:
    """The check above can fail: importing an installed SDK is seen by the same parser."""
    modules = _imported_modules("import json, dotenv", tmp_path)
    assert "dotenv" in modules
