"""The authchain quickstart: run with `python3 dev.py demo` from the repo root.

Everything here runs on the embedded config (authchain.toml and .env next to
this file); no server is needed. Values are made up and still never printed:
watch them stay masked.
"""

from __future__ import annotations

import os
import subprocess
import sys

import authchain


def section(title: str) -> None:
    print(f"\n=== {title} ===")


section("1. resolve a secret")
password = authchain.resolve("DB_PASSWORD")
print("authchain.resolve('DB_PASSWORD') ->", repr(password))
print("printed or formatted it stays masked:", password, f"{password}")
print("the real value is one explicit call away: len(get_secret_value()) =", len(password.get_secret_value()))

section("2. explain: who has the name, who won, who is shadowed")
os.environ["DEMO_DB_PASSWORD"] = "set-in-the-environment-not-real"  # noqa: S105 - made-up demo value
print(authchain.explain("DB_PASSWORD"))

section("3. a JSON secret, a pinned reference, and an explicit argument")
account = authchain.resolve("SERVICE_ACCOUNT").fields()
print("SERVICE_ACCOUNT fields:", sorted(account), "->", account["user"])
pinned = authchain.explain("WAREHOUSE_TOKEN")
print(f"WAREHOUSE_TOKEN is pinned to {pinned.pinned_to} and was found by: {pinned.winner.source}")
given = authchain.resolve("DB_PASSWORD", explicit="passed-by-caller")
print("explicit wins over every source:", given == authchain.SecretValue("passed-by-caller"))

section("4. nothing has it: the error lists every source asked")
try:
    authchain.resolve("MISSING_TOKEN")
except authchain.SecretNotFound as error:
    print(error)
print("with a default instead:", authchain.resolve("MISSING_TOKEN", default=None))

section("5. the CLI: `authchain run` resolves references and masks the child's output")
env = {**os.environ, "API_TOKEN": "dotenv://.env#DEMO_API_TOKEN"}
command = [
    sys.executable,
    "-m",
    "authchain.cli",
    "run",
    "--",
    sys.executable,
    "-c",
    "import os; print('the child sees API_TOKEN =', os.environ['API_TOKEN'])",
]
subprocess.run(command, env=env, check=True)
print("\n$ authchain resolve DB_PASSWORD   (masked unless --reveal)")
subprocess.run([sys.executable, "-m", "authchain.cli", "resolve", "DB_PASSWORD"], check=True)
