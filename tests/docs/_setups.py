"""What a reader does before running a documented block, done by the test instead.

A block marked ``<!-- run-with: NAME, ... -->`` gets each named set-up before it runs.
A set-up does what the reader's own machine would provide (a server and the variables
that point at it, a secret stored there, a config file the block names) and never edits
the block. Two kinds of set-up exist:

- *preparing* ones fill in the :class:`Context` (``env``, ``stdin``, ``config``, checks to
  make ``after`` the run): the block then runs as written;
- *verifying* ones, for blocks that show output or a synopsis rather than code to run
  (``text`` blocks, a ``pyproject.toml`` fragment), check the block against what the code
  does and set ``ctx.verified``.

Servers come from the session's fixtures (``tests/servers/``), fetched only when a block
asks for them, so a run of the docs tests starts only what its blocks need.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from authchain.testing import canary
from tests._offline import OFFLINE_ENV
from tests.docs._blocks import Block

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ROOT", "SETUPS", "Context", "run_python"]

ROOT = Path(__file__).resolve().parents[2]
CHILD_GUARD = Path(__file__).resolve().parent / "child_guard"


@dataclass
class Context:
    """One block's run: where it runs, with what environment, and what to check after."""

    block: Block
    blocks: list[Block]  # every block of the same document (a set-up may need a neighbour)
    tmp_path: Path
    request: pytest.FixtureRequest
    # Never in a repr: a failing test's traceback shows the context, and these hold secrets.
    env: dict[str, str] = field(default_factory=dict, repr=False)
    stdin: str = field(default="", repr=False)
    secrets: list[str] = field(default_factory=list, repr=False)  # values no output may contain
    config: dict[str, dict[str, str]] = field(default_factory=dict)  # tables of authchain.toml
    after: list[Callable[[subprocess.CompletedProcess[str]], None]] = field(default_factory=list)
    verified: bool = False  # a verifying set-up checked the block itself

    @classmethod
    def fresh(
        cls, block: Block, blocks: list[Block], tmp_path: Path, request: pytest.FixtureRequest
    ) -> Context:
        """A clean machine: no credentials, no config, home and XDG folders in ``tmp_path``."""
        home = tmp_path / "home"
        home.mkdir()
        env = {
            **OFFLINE_ENV,  # no SDK probes a cloud metadata service
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.defpath]),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            # The network guard for the block's Python processes, then this checkout (not
            # whatever authchain is installed).
            "PYTHONPATH": os.pathsep.join([str(CHILD_GUARD), str(ROOT)]),
            "AUTHCHAIN_DOCS_GUARD_LOG": str(tmp_path / "network-guard.log"),
            "PREFECT_HOME": str(home / ".prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "LANG": "C.UTF-8",
        }
        return cls(block=block, blocks=blocks, tmp_path=tmp_path, request=request, env=env)

    def write_config(self) -> None:
        """Write the tables set-ups asked for as the reader's ``authchain.toml``, named by
        ``AUTHCHAIN_CONFIG`` (a file the user names is trusted)."""
        if not self.config:
            return
        lines = []
        for table, values in self.config.items():
            lines.append(f"[{table}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        path = self.tmp_path / "setup" / "authchain.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.env["AUTHCHAIN_CONFIG"] = str(path)

    def check_output(self, result: subprocess.CompletedProcess[str]) -> None:
        """The run succeeded, printed no planted secret, and passes the set-ups' checks."""
        output = result.stdout + result.stderr
        guard_log = Path(self.env["AUTHCHAIN_DOCS_GUARD_LOG"])
        blocked = guard_log.read_text(encoding="utf-8") if guard_log.exists() else ""
        assert not blocked, f"{self.block.where()} reached for an address off this machine:\n{blocked}"
        assert result.returncode == 0, f"{self.block.where()} exited {result.returncode}:\n{output[-3000:]}"
        for value in self.secrets:
            assert value not in output, f"{self.block.where()} printed a planted secret"
        for check in self.after:
            check(result)


def run_python(ctx: Context, code: str, *, name: str = "block.py") -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script in a fresh interpreter, in the context's folder and environment."""
    script = ctx.tmp_path / name
    script.write_text(code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=ctx.tmp_path,
        env=ctx.env,
        input=ctx.stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


# -- preparing set-ups ----------------------------------------------------------------


def env_secrets(ctx: Context) -> None:
    """The names the README's examples resolve, set in the environment as a reader's would be."""
    for name in ("DB_PASSWORD", "API_TOKEN", "A", "B", "C", "OTHER_NAME"):
        value = canary(name.lower())
        ctx.env[name] = value
        ctx.secrets.append(value)


def dev_profile_config(ctx: Context) -> None:
    """The reader's ``path/to/authchain.toml`` with a ``dev`` profile, as the block names it."""
    path = ctx.tmp_path / "path" / "to" / "authchain.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[sources.env]\ntype = "env"\n\n[profiles.dev]\ncache_ttl = 0\n', encoding="utf-8")


def moto(ctx: Context) -> None:
    """AWS (moto on 127.0.0.1) as the reader's environment points at it, with the secret
    ``ops/etl-aws-keys`` (another identity's keys) stored."""
    server = ctx.request.getfixturevalue("moto")
    ctx.env.update({name: value for name, value in os.environ.items() if name.startswith("AWS_")})
    keys = {"ACCESS_KEY": "AKIAETLDOCSEXAMPLE00", "SECRET_ACCESS_KEY": canary("etl-secret-key")}
    server.client("secretsmanager").create_secret(Name="ops/etl-aws-keys", SecretString=json.dumps(keys))
    ctx.secrets.append(keys["SECRET_ACCESS_KEY"])


def openbao(ctx: Context) -> None:
    """The session's OpenBao, as ``VAULT_ADDR`` and ``VAULT_TOKEN`` (its root token)."""
    server = ctx.request.getfixturevalue("openbao")
    ctx.env["VAULT_ADDR"] = server.url
    ctx.env["VAULT_TOKEN"] = server.root_token
    ctx.secrets.append(server.root_token)


def gcp_fake(ctx: Context) -> None:
    """The in-process Secret Manager, named as ``[clients.gcp] endpoint`` in the config."""
    fake = ctx.request.getfixturevalue("gcp_fake")
    ctx.config.setdefault("clients.gcp", {})["endpoint"] = fake.endpoint


def azure_vault(ctx: Context) -> None:
    """The in-process HTTPS Key Vault as the reader's vault ``my-vault``: ``[sources.kv]`` and
    ``[clients.azure]`` point at it (its authority and CA too), a service principal in
    ``AZURE_TENANT_ID``/``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET``, and the secrets
    ``DB-PASSWORD`` and ``app-db`` (JSON) stored."""
    pytest.importorskip("azure.keyvault.secrets", reason="needs the azure extra")
    fake = ctx.request.getfixturevalue("azure_vault")
    client_id, client_secret = "00000000-0000-4000-8000-00000000d0c5", canary("azure-sp")
    fake.add_client(client_id, client_secret)
    ctx.env.update(
        {"AZURE_TENANT_ID": fake.tenant, "AZURE_CLIENT_ID": client_id, "AZURE_CLIENT_SECRET": client_secret}
    )
    where = {"vault_url": fake.url, "authority": fake.url, "ca_bundle": fake.ca_file}
    ctx.config["sources.kv"] = {"type": "azure-kv", "vault_name": "my-vault", **where}
    ctx.config["clients.azure"] = dict(where)
    password, field = canary("azure-db"), canary("azure-user")
    fake.set_secret("DB-PASSWORD", password)
    fake.set_secret("app-db", json.dumps({"user": field, "password": canary("azure-db2")}))
    ctx.secrets += [client_secret, password, field]


def keyring(ctx: Context) -> None:
    """A file keyring in the temporary home; the value typed at the prompt comes on stdin
    and ``$VALUE`` holds another. After the block: the entry it deleted is gone."""
    ctx.env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
    typed, piped = canary("typed"), canary("piped")
    ctx.stdin = typed + "\n"
    ctx.env["VALUE"] = piped
    ctx.secrets += [typed, piped]

    def entry_deleted(result: subprocess.CompletedProcess[str]) -> None:
        from keyrings.alt.file import PlaintextKeyring

        store = PlaintextKeyring()
        store.file_path = str(Path(ctx.env["XDG_DATA_HOME"]) / "python_keyring" / "keyring_pass.cfg")
        assert Path(store.file_path).exists(), "the block stored nothing in the keyring"
        assert store.get_password("my-pipeline", "DB_PASSWORD") is None

    ctx.after.append(entry_deleted)


# -- verifying set-ups --------------------------------------------------------------------


def not_found_message(ctx: Context) -> None:
    """The error shown is what a chain of ``env`` and ``.env`` with prefix ``APP_`` raises."""
    (ctx.tmp_path / "authchain.toml").write_text(
        '[sources.env]\ntype = "env"\nprefix = "APP_"\n\n'
        '[sources.dotenv]\ntype = "dotenv"\nprefix = "APP_"\n',
        encoding="utf-8",
    )
    (ctx.tmp_path / ".env").write_text("APP_OTHER=1\n", encoding="utf-8")
    result = run_python(ctx, 'import authchain\nauthchain.resolve("DB_PASSWORD")\n')
    assert result.returncode == 1, result.stderr[-2000:]
    shown = ctx.block.text.strip().splitlines()
    assert result.stderr.strip().splitlines()[-len(shown) :] == shown
    ctx.verified = True


def output_of_previous_block(ctx: Context) -> None:
    """The block is output that the nearest shell or Python block above it prints: its
    lines appear together, in order, in what that block prints when run as written."""
    earlier = [b for b in ctx.blocks if b.line < ctx.block.line and b.language in ("bash", "sh", "python")]
    assert earlier, f"{ctx.block.where()}: no shell or Python block above it"
    producer = earlier[-1]
    if producer.language == "python":
        result = run_python(ctx, producer.text)
    else:
        script = ctx.tmp_path / "producer.sh"
        script.write_text(producer.text, encoding="utf-8")
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", str(script)],
            cwd=ctx.tmp_path,
            env=ctx.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    ctx.check_output(result)
    shown = ctx.block.text.rstrip("\n")
    where = f"{ctx.block.where()} is not what {producer.where()} prints"
    assert shown in result.stdout, f"{where}:\n{result.stdout}"
    ctx.verified = True


def cli_synopsis(ctx: Context) -> None:
    """Each line is a command the parser has, with options it accepts; no command is missing."""
    from authchain.cli import build_parser

    parser = build_parser()
    listed = set()
    for line in ctx.block.text.strip().splitlines():
        words = line.split("#", 1)[0].split()
        assert words[0] == "authchain", line
        current, path = parser, []
        for word in (word.strip("[]") for word in words[1:]):
            commands = _subcommands(current)
            if word in commands:
                current = commands[word]
                path.append(word)
            elif word.startswith("--") and len(word) > 2:
                assert word in current._option_string_actions, f"{line!r}: {word} is not an option"
        listed.add(tuple(path))
    assert listed == set(_leaf_commands(parser)), "the synopsis and the parser list different commands"
    ctx.verified = True


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = _subcommands(parser)
    if not commands:
        return [path]
    return [leaf for name, sub in commands.items() for leaf in _leaf_commands(sub, (*path, name))]


def source_plugin(ctx: Context) -> None:
    """The entry point, installed as pip would install it (a ``.dist-info`` folder), makes
    the section's source class a ``type`` a config can use."""
    earlier = [b for b in ctx.blocks if b.section == ctx.block.section and b.index < ctx.block.index]
    source_block = [b for b in earlier if b.language == "python"][-1]
    points = tomllib.loads(ctx.block.text)["project"]["entry-points"]["authchain.sources"]
    site = ctx.tmp_path / "site"
    package = site / "my_package"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "source.py").write_text(source_block.text, encoding="utf-8")
    info = site / "my_package-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: my-package\nVersion: 0.1\n", encoding="utf-8"
    )
    entry_points = "".join(f"{name} = {target}\n" for name, target in points.items())
    (info / "entry_points.txt").write_text(f"[authchain.sources]\n{entry_points}", encoding="utf-8")
    ctx.env["PYTHONPATH"] = os.pathsep.join([str(site), ctx.env["PYTHONPATH"]])
    check = (
        "from pathlib import Path\n"
        "from authchain import Chain\n"
        'Path("authchain.toml").write_text(\'[sources.mine]\\ntype = "my-store"\\nurl = "https://store.test"\\n\')\n'
        'source = Chain.from_config("authchain.toml").source("mine")\n'
        'assert type(source).__name__ == "MyStoreSource" and source.url == "https://store.test"\n'
        'assert source.key_for("DB_PASSWORD") == "DB_PASSWORD"\n'
    )
    ctx.check_output(run_python(ctx, check, name="check_plugin.py"))
    ctx.verified = True


SETUPS: dict[str, Callable[[Context], None]] = {
    "env-secrets": env_secrets,
    "dev-profile-config": dev_profile_config,
    "moto": moto,
    "openbao": openbao,
    "gcp-fake": gcp_fake,
    "azure-vault": azure_vault,
    "keyring": keyring,
    "not-found-message": not_found_message,
    "cli-synopsis": cli_synopsis,
    "output-of-previous-block": output_of_previous_block,
    "source-plugin": source_plugin,
}
