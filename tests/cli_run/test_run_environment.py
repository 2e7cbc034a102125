"""What ``authchain run`` hands the child (issue 13, items 3-4).

- A variable named in ``--scrub`` never reaches the child: not itself, not
  through a reference, not as a copy in another variable or secret.
- A token a Vault source obtained by logging in (AppRole, JWT, Kubernetes, against the
  real OpenBao dev server) never lands in the child's environment.
- A reference taken from the environment reads files only inside the working
  directory (absolute paths, ``..``, ``~`` and symlinks); ``--only`` and
  ``[run] only`` choose what is resolved, the rest passes through as text.

Each test plants fresh values and checks the child never started (a marker
file it would write) and that no output of the run quotes the value.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from authchain import BackendError, Chain, ConfigError
from authchain._run import build_environment
from authchain.backends.env.source import EnvSource
from tests.cli_run._helpers import child, run
from tests.servers.openbao import OpenBao

# Writes the environment it was given as JSON to the file CHILD_MARKER names.
DUMP = "import json, os; json.dump(dict(os.environ), open(os.environ['CHILD_MARKER'], 'w'))"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(the project folder the command runs in, a folder outside it)."""
    inside, outside = tmp_path / "project", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    return inside, outside


def launch(
    folder: Path, *args: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, str] | None]:
    """Run the DUMP child; return the result and the environment it saw (None: it never started)."""
    marker = folder / f"child-{secrets.token_hex(4)}.json"
    result = run(folder, *args, *child(DUMP), env={**env, "CHILD_MARKER": str(marker)})
    if not marker.exists():
        return result, None
    seen = json.loads(marker.read_text(encoding="utf-8"))
    marker.unlink()
    return result, seen


def assert_absent(
    value: str, result: subprocess.CompletedProcess[bytes], seen: dict[str, str] | None
) -> None:
    assert value.encode() not in result.stdout + result.stderr
    if seen is not None:
        assert all(value not in text for text in seen.values())


# -- item 3: --scrub ------------------------------------------------------------------


def test_a_reference_to_a_scrubbed_variable_is_refused(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    token = "boot-" + secrets.token_hex(16)
    for reference in ("env://BOOT", "env://boot"):  # the env source may match names either case
        result, seen = launch(folder, "--scrub", "BOOT", env={"BOOT": token, "Y": reference})
        assert result.returncode == 2, result.stderr
        assert seen is None
        assert b"Y refers to BOOT" in result.stderr
        assert_absent(token, result, seen)


def test_a_copy_of_a_scrubbed_value_is_refused_whichever_way_it_comes(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    token = "boot-" + secrets.token_hex(16)
    (folder / ".env").write_text(
        f"COPY={token}\nDOC='{json.dumps({'nested': {'token': token}})}'\n", encoding="utf-8"
    )
    cases = {
        "a file holding the same value": {"Y": "dotenv://.env#COPY"},
        "a JSON document holding it": {"Y": "dotenv://.env#DOC"},
        "a plain variable with the same value": {"ALSO": token},
        "a plain variable containing it": {"ALSO": f"Bearer {token}"},
    }
    for case, extra in cases.items():
        result, seen = launch(folder, "--scrub", "BOOT", env={"BOOT": token, **extra})
        assert result.returncode == 2, (case, result.stderr)
        assert seen is None, case
        assert b"scrubbed variable BOOT" in result.stderr, case
        assert_absent(token, result, seen)


def test_scrub_takes_the_same_patterns_as_only(folders: tuple[Path, Path]) -> None:
    """``--scrub 'BOOT_*'`` beside ``--only 'DB_*'``: a pattern that matched nothing would
    leave every bootstrap credential in place while the user believes it gone."""
    folder, _ = folders
    tokens = {name: f"boot-{secrets.token_hex(16)}" for name in ("BOOT_TOKEN", "BOOT_SECRET_ID")}
    result, seen = launch(folder, "--scrub", "BOOT_*", env={**tokens, "KEEP": "kept"})
    assert result.returncode == 0, result.stderr
    assert seen is not None
    assert not {"BOOT_TOKEN", "BOOT_SECRET_ID"} & set(seen)
    assert seen["KEEP"] == "kept"
    for token in tokens.values():
        assert_absent(token, result, seen)
    # A reference to a variable the pattern covers (in any letter case), and a copy of its value.
    for extra in (
        {"Y": "env://BOOT_TOKEN"},
        {"Y": "env://boot_token"},
        {"ALSO": f"Bearer {tokens['BOOT_TOKEN']}"},
    ):
        result, seen = launch(folder, "--scrub", "BOOT_*", env={**tokens, **extra})
        assert result.returncode == 2, (extra, result.stderr)
        assert seen is None, extra
        for token in tokens.values():
            assert_absent(token, result, seen)


def test_scrubbed_variables_are_gone_and_never_resolved(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    token = "boot-" + secrets.token_hex(16)
    result, seen = launch(
        folder,
        "--scrub",
        "BOOT",
        "LATER",
        env={"BOOT": token, "LATER": "env://NOT_SET_ANYWHERE", "KEEP": "kept"},
    )
    assert result.returncode == 0, result.stderr
    assert seen is not None
    assert "BOOT" not in seen
    assert "LATER" not in seen  # scrubbed before anything resolves: no "not found" either
    assert seen["KEEP"] == "kept"
    assert_absent(token, result, seen)


# -- item 3: login tokens (AppRole against the real OpenBao) ----------------------------


def _login_chain(
    openbao: OpenBao, method: str, jwt_mount: tuple[str, Any], tmp_path: Path
) -> tuple[Chain, Any]:
    """A chain whose Vault source logs in with ``method`` (credentials from an env source of its own)."""
    from authchain.backends.vault.source import VaultSource

    mount, sign = jwt_mount
    if method == "approle":
        role_id, secret_id = openbao.approles["app"]
        source = VaultSource(url=openbao.url, auth="approle")
        creds = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    elif method == "jwt":
        source = VaultSource(url=openbao.url, auth="jwt", role="ci", auth_mount=mount, jwt="CI_JWT")
        creds = {"CI_JWT": sign()}
    else:  # kubernetes: the same login body, the token read from a service-account file
        token_file = tmp_path / "sa-token"
        token_file.write_text(sign(), encoding="utf-8")
        source = VaultSource(
            url=openbao.url, auth="kubernetes", role="ci", auth_mount=mount, jwt_path=token_file
        )
        creds = {}
    return Chain([source, EnvSource(environ=creds)]), source


@pytest.mark.parametrize("method", ["approle", "jwt", "kubernetes"])
def test_a_vault_login_token_never_reaches_the_childs_environment(
    openbao: OpenBao, jwt_mount: tuple[str, Any], tmp_path: Path, method: str
) -> None:
    folder = f"t/{secrets.token_hex(4)}"
    value = "db-" + secrets.token_hex(12)
    openbao.put(f"{folder}/db", {"password": value})
    chain, source = _login_chain(openbao, method, jwt_mount, tmp_path)
    environment = build_environment({"DB": f"vault://secret/{folder}/db#password"}, lambda: chain, scrub=())
    assert environment["DB"] == value
    token = source._session_token
    assert isinstance(token, str)
    assert len(token) > 8  # the chain did log in
    assert all(token not in text for text in environment.values())

    # The same token reached through the store: as a KV value, inside a JSON secret,
    # and as the answer of a non-KV read. None of them may be handed over.
    openbao.put(f"{folder}/leak", {"copy": token, "doc": json.dumps({"t": token})})
    attempts = {
        "KV value": f"vault://secret/{folder}/leak#copy",
        "inside JSON": f"vault://secret/{folder}/leak#doc",
        "whole secret": f"vault://secret/{folder}/leak",
        "lookup-self": "vault://auth/token/lookup-self?kv=1#id",
    }
    for what, reference in attempts.items():
        environ = {"DB": f"vault://secret/{folder}/db#password", "LEAK": reference}
        with pytest.raises((ConfigError, BackendError)) as caught:
            build_environment(environ, lambda: chain)
        assert token not in str(caught.value), what
        assert value not in str(caught.value), what
    # An inherited variable holding it (as if an SDK or a script had exported it) is refused too.
    with pytest.raises(ConfigError):
        build_environment({"DB": f"vault://secret/{folder}/db#password", "X": f"t={token}"}, lambda: chain)
    chain.close()


def test_a_login_token_stays_out_of_the_cli_run(openbao: OpenBao, folders: tuple[Path, Path]) -> None:
    """End to end: config with an AppRole source, a reference that would return the token."""
    folder, _ = folders
    role_id, secret_id = openbao.approles["app"]
    config = f'[sources.env]\ntype = "env"\n\n[sources.vault]\ntype = "vault"\nurl = "{openbao.url}"\n'
    (folder / "authchain.toml").write_text(config + 'auth = "approle"\n', encoding="utf-8")
    # Named, not found by searching upwards: an untrusted file could not send credentials to its url.
    creds = {
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
        "AUTHCHAIN_CONFIG": str(folder / "authchain.toml"),
    }
    prefix = f"t/{secrets.token_hex(4)}"
    value = "db-" + secrets.token_hex(12)
    openbao.put(f"{prefix}/db", {"password": value})
    scrub = ("--scrub", "VAULT_ROLE_ID", "VAULT_SECRET_ID")
    result, seen = launch(folder, *scrub, env={**creds, "LEAK": "vault://auth/token/lookup-self?kv=1#id"})
    assert result.returncode in (2, 3), result.stderr
    assert b"not found by any other source" not in result.stderr  # it did log in
    assert seen is None
    assert_absent(secret_id, result, seen)
    result, seen = launch(folder, *scrub, env={**creds, "DB": f"vault://secret/{prefix}/db#password"})
    assert result.returncode == 0, result.stderr
    assert seen is not None
    assert seen["DB"] == value
    assert "VAULT_SECRET_ID" not in seen
    assert "VAULT_ROLE_ID" not in seen
    # Whatever token the run logged in with, it is not in what the child was given:
    # each value the child saw is asked to look itself up, and none is a token.
    client = openbao.client()
    for text in seen.values():
        if 20 <= len(text) <= 200 and "\n" not in text:
            with contextlib.suppress(Exception):  # not a token: hvac raises InvalidRequest/Forbidden
                client.auth.token.lookup(text)
                pytest.fail("a variable of the child's environment is a live Vault token")


# -- item 4: what a reference from the environment may read -------------------------------


def test_references_from_the_environment_read_no_file_outside_the_working_directory(
    folders: tuple[Path, Path],
) -> None:
    folder, outside = folders
    stolen = "aws-" + secrets.token_hex(16)
    credentials = outside / "credentials"
    credentials.write_text(f"aws_secret_access_key={stolen}\n", encoding="utf-8")
    (folder / "link.env").symlink_to(credentials)
    (folder / "sub").mkdir()
    (folder / "sub" / "up.env").symlink_to(Path("..") / ".." / "elsewhere" / "credentials")
    attempts = {
        "absolute path": f"dotenv://{credentials}#aws_secret_access_key",
        "dot-dot": "dotenv://../elsewhere/credentials#aws_secret_access_key",
        "symlink in the folder": "dotenv://link.env#aws_secret_access_key",
        "relative symlink": "dotenv://sub/up.env#aws_secret_access_key",
        "home directory": "dotenv://~/credentials#aws_secret_access_key",
    }
    for what, reference in attempts.items():
        result, seen = launch(folder, env={"PR_TITLE": reference, "HOME": str(outside)})
        assert result.returncode == 2, (what, result.stderr)
        assert seen is None, what
        assert b"outside the working directory" in result.stderr, what
        assert_absent(stolen, result, seen)


def test_files_inside_the_working_directory_still_resolve(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    value = "db-" + secrets.token_hex(12)
    (folder / "config").mkdir()
    (folder / "config" / "app.env").write_text(f"DB={value}\n", encoding="utf-8")
    (folder / "short.env").symlink_to(Path("config") / "app.env")
    for reference in (
        "dotenv://config/app.env#DB",
        "dotenv://short.env#DB",
        "dotenv://config/../short.env#DB",
    ):
        result, seen = launch(folder, env={"DB_PASSWORD": reference})
        assert result.returncode == 0, (reference, result.stderr)
        assert seen is not None
        assert seen["DB_PASSWORD"] == value


# -- item 4: --only and [run] only -----------------------------------------------------------


def _project_with_db(folder: Path) -> str:
    value = "db-" + secrets.token_hex(12)
    (folder / ".env").write_text(f"DB={value}\n", encoding="utf-8")
    return value


def test_only_resolves_the_chosen_variables_and_passes_the_rest_through(folders: tuple[Path, Path]) -> None:
    folder, outside = folders
    value = _project_with_db(folder)
    stolen = "aws-" + secrets.token_hex(16)
    (outside / "credentials").write_text(f"KEY={stolen}\n", encoding="utf-8")
    untouched = {
        "PR_TITLE": f"dotenv://{outside / 'credentials'}#KEY",
        "BRANCH": "vault://not a valid reference",
        "NOTE": "env://NOT_SET_ANYWHERE",
    }
    for only in (("--only", "DB_*"), ("--only", "DB_PASSWORD", "--only", "DB_OTHER")):
        result, seen = launch(folder, *only, env={"DB_PASSWORD": "dotenv://.env#DB", **untouched})
        assert result.returncode == 0, (only, result.stderr)
        assert seen is not None
        assert seen["DB_PASSWORD"] == value
        for name, text in untouched.items():
            assert seen[name] == text  # handed over as the text it is
        assert_absent(stolen, result, seen)


def test_a_chosen_variable_that_fails_stops_the_run(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    _project_with_db(folder)
    missing, seen = launch(folder, "--only", "DB_*", env={"DB_PASSWORD": "env://NOT_SET_ANYWHERE"})
    assert missing.returncode == 1
    assert seen is None
    malformed, seen = launch(folder, "--only", "DB_*", env={"DB_PASSWORD": "vault://not valid"})
    assert malformed.returncode == 2
    assert seen is None
    # Without --only every reference-looking variable is chosen: one that fails stops the run.
    unchosen, seen = launch(folder, env={"PR_TITLE": "env://NOT_SET_ANYWHERE"})
    assert unchosen.returncode == 1
    assert seen is None


def test_run_only_in_the_config_and_the_command_line_replacing_it(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    value = _project_with_db(folder)
    (folder / ".env").write_text(f"DB={value}\nAPI=api-{secrets.token_hex(8)}\n", encoding="utf-8")
    (folder / "authchain.toml").write_text('[run]\nonly = ["DB_*"]\n', encoding="utf-8")
    env = {"DB_PASSWORD": "dotenv://.env#DB", "API_KEY": "dotenv://.env#API"}
    result, seen = launch(folder, env=env)
    assert result.returncode == 0, result.stderr
    assert seen is not None
    assert seen["DB_PASSWORD"] == value
    assert seen["API_KEY"] == "dotenv://.env#API"
    result, seen = launch(folder, "--only", "API_*", env=env)
    assert result.returncode == 0, result.stderr
    assert seen is not None
    assert seen["DB_PASSWORD"] == "dotenv://.env#DB"
    assert seen["API_KEY"].startswith("api-")


def test_config_shows_and_validates_the_run_table(folders: tuple[Path, Path]) -> None:
    from tests.cli_run._helpers import clean_environment

    folder, _ = folders
    (folder / "authchain.toml").write_text('[run]\nonly = ["DB_*", "API_KEY"]\n', encoding="utf-8")

    def config(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "authchain.cli", "config", *args],
            cwd=folder,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    shown = config()
    assert shown.returncode == 0, shown.stderr
    assert '[run] only = ["DB_*", "API_KEY"]' in shown.stdout
    data = json.loads(config("--json").stdout)
    assert data["run"]["only"]["value"] == ["DB_*", "API_KEY"]
    assert data["run"]["only"]["origin"].endswith("authchain.toml")
    for bad in ('[run]\nonly = "DB_*"\n', "[run]\nonly = [1]\n", '[run]\nnope = ["X"]\n', 'run = "x"\n'):
        (folder / "authchain.toml").write_text(bad, encoding="utf-8")
        assert config().returncode == 2, bad
    assert os.path.exists(folder / "authchain.toml")


def test_a_profile_replaces_run_only(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    api = "api-" + secrets.token_hex(8)
    (folder / ".env").write_text(f"DB=db-{secrets.token_hex(8)}\nAPI={api}\n", encoding="utf-8")
    (folder / "authchain.toml").write_text(
        '[run]\nonly = ["DB_*"]\n\n[profiles.ci.run]\nonly = ["API_*"]\n', encoding="utf-8"
    )
    env = {"DB_PASSWORD": "dotenv://.env#DB", "API_KEY": "dotenv://.env#API"}
    result, seen = launch(folder, "--profile", "ci", env=env)
    assert result.returncode == 0, result.stderr
    assert seen is not None
    assert seen["API_KEY"] == api
    assert seen["DB_PASSWORD"] == "dotenv://.env#DB"


# -- an unresolvable reference from the environment is named by its variable only ------


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("env://{PLANTED}", 1),  # not found: the trail lists the key each source asked for
        ("env://{PLANTED}#field", 1),
        ("dotenv://./{planted}.env#KEY", 1),
        ("vault://sys/{planted}", 3),  # a refusal that quotes the reference
    ],
    ids=["env", "env-field", "dotenv", "vault-sys"],
)
def test_an_unresolvable_reference_from_the_environment_is_not_echoed(
    folders: tuple[Path, Path], reference: str, code: int
) -> None:
    """The path of a reference ``run`` finds in the environment is text others may have written,
    or a secret pasted by mistake: an error names the variable, never the reference."""
    folder, _ = folders
    planted = "pasted" + secrets.token_hex(10)
    text = reference.format(planted=planted, PLANTED=planted.upper())
    result, seen = launch(folder, env={"PR_TITLE": text, "VAULT_ADDR": "http://127.0.0.1:9"})
    assert seen is None, "the child never starts"
    assert result.returncode == code, result.stderr
    stderr = result.stderr.decode()
    assert "PR_TITLE" in stderr
    assert "authchain explain" in stderr
    for shown in (planted, planted.upper()):
        assert shown.encode() not in result.stdout + result.stderr, stderr
        assert shown.lower().encode() not in (result.stdout + result.stderr).lower(), stderr


def test_several_unresolvable_variables_are_all_named(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    first, second = ("pasted" + secrets.token_hex(10) for _ in range(2))
    result, seen = launch(folder, env={"A_REF": f"env://{first}", "B_REF": f"env://{second}"})
    assert seen is None
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "A_REF" in stderr
    assert "B_REF" in stderr
    assert first not in stderr
    assert second not in stderr


def test_the_unquoted_not_found_keeps_its_message_through_a_pickle(tmp_path: Path) -> None:
    """The error `run` raises for an unresolvable reference names the variable, also after it
    crosses a process boundary (a pickle rebuilt from the name alone would quote nothing, but
    lose the message and the hint)."""
    import pickle

    from authchain import SecretNotFound

    planted = "pasted" + secrets.token_hex(12)
    chain = Chain([EnvSource(name="env", environ={})])
    with pytest.raises(SecretNotFound) as caught:
        build_environment({"PR_TITLE": f"env://{planted}"}, lambda: chain, cwd=tmp_path)
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert isinstance(copy, SecretNotFound)
    assert str(copy) == str(caught.value)
    assert "PR_TITLE" in str(copy)
    assert planted not in str(copy)
    assert planted not in repr(copy)
