"""Cached ``resolve("X")`` from the environment, next to ``os.environ``, pydantic-settings and Prefect.

Phase 1 (Prefect not imported, like a plain script): ``os.environ[X]``,
``authchain.resolve(X)`` on the default chain (explicit, prefect, env, .env;
run from an empty directory, the value already cached), the same on a
one-source ``Chain([EnvSource()])``, pydantic-settings ``BaseSettings()``
construction plus the field read, all interleaved round by round.

Phase 2 (Prefect's local API running in a temporary ``PREFECT_HOME``):
``Secret.load(...).get()`` against it, interleaved with ``authchain.resolve``
in the same (now Prefect-importing) process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from benchmarks._harness import (
    Case,
    Row,
    Stats,
    fmt_ratio,
    fmt_time,
    generated_secret,
    interleaved,
    main,
    neutral_directory,
    patched_environ,
    prefect_api,
    verdict,
)

NAME = "BENCH_SECRET_TOKEN"
BLOCK = "bench-secret-token"


def _micro(statement: str, namespace: dict[str, object], quick: bool) -> Case:
    return Case(statement, namespace, number=200 if quick else 0)


def _phase_one(quick: bool) -> dict[str, Stats]:
    import authchain
    from authchain._default import get_default_chain, set_default_chain
    from authchain.backends.env.source import EnvSource

    namespace: dict[str, object] = {"os": os, "authchain": authchain, "NAME": NAME}
    authchain.resolve(NAME)  # cached from here on
    namespace["env_chain"] = env_chain = authchain.Chain([EnvSource()])
    env_chain.resolve(NAME)
    namespace["current"] = current = get_default_chain()

    def use(chain: Any) -> Callable[[], object]:
        return lambda: set_default_chain(chain)  # the chain authchain.resolve() will use

    cases = {
        "os.environ": _micro('os.environ["BENCH_SECRET_TOKEN"]', namespace, quick),
        "authchain.resolve": _micro('authchain.resolve("BENCH_SECRET_TOKEN")', namespace, quick),
        "Chain([env]).resolve": _micro('env_chain.resolve("BENCH_SECRET_TOKEN")', namespace, quick),
    }
    cases["authchain.resolve"].before = use(current)
    try:
        from pydantic import SecretStr
        from pydantic_settings import BaseSettings

        class BenchSettings(BaseSettings):
            bench_secret_token: SecretStr

        namespace["BenchSettings"] = BenchSettings
        cases["pydantic-settings"] = _micro(
            "BenchSettings().bench_secret_token.get_secret_value()", namespace, quick
        )
    except ImportError:
        pass
    try:
        return interleaved(cases, 2 if quick else 15)
    finally:
        set_default_chain(current)


def _phase_two(quick: bool) -> dict[str, Stats] | None:
    try:
        import prefect  # noqa: F401
    except ImportError:
        return None
    import authchain
    from authchain._default import get_default_chain, set_default_chain

    current = get_default_chain()
    with prefect_api():
        from prefect.blocks.system import Secret

        Secret(value=generated_secret()).save(BLOCK, overwrite=True)
        namespace: dict[str, object] = {"Secret": Secret, "authchain": authchain}
        cases = {
            "prefect Secret.load": Case(
                f'Secret.load("{BLOCK}", _sync=True).get()', namespace, number=2 if quick else 0
            ),
            "authchain.resolve (prefect imported)": _micro(
                'authchain.resolve("BENCH_SECRET_TOKEN")', namespace, quick
            ),
        }
        cases["authchain.resolve (prefect imported)"].before = lambda: set_default_chain(current)
        try:
            return interleaved(cases, 2 if quick else 9)
        finally:
            set_default_chain(current)


def run(quick: bool) -> list[Row]:
    with neutral_directory(), patched_environ({NAME: generated_secret()}):
        one = _phase_one(quick)
        # Prefect's test harness takes 10-40 s to start here: the smoke mode leaves it out.
        two = None if quick else _phase_two(quick)
    environ = one["os.environ"].median
    subject = one["authchain.resolve"].median
    rows = [
        Row(
            '`resolve("X")`, cached, from env',
            fmt_time(subject),
            f"`os.environ[X]` {fmt_time(environ)}",
            fmt_ratio(subject / environ) + " os.environ",
            "≤ 5× os.environ",
            verdict(subject <= 5 * environ),
            "default chain (explicit, prefect, env, .env), served by the remembered-answer fast path",
            {k: v.as_dict() for k, v in one.items()},
        ),
        Row(
            '`Chain([EnvSource()]).resolve("X")`, cached',
            fmt_time(one["Chain([env]).resolve"].median),
            f"`os.environ[X]` {fmt_time(environ)}",
            fmt_ratio(one["Chain([env]).resolve"].median / environ) + " os.environ",
            "(one-source chain, for context)",
            "info",
        ),
    ]
    if "pydantic-settings" in one:
        peer = one["pydantic-settings"].median
        rows.append(
            Row(
                '`resolve("X")`, cached, vs pydantic-settings',
                fmt_time(subject),
                f"`BenchSettings().x.get_secret_value()` {fmt_time(peer)}",
                fmt_ratio(peer / subject) + " faster",
                "≥ 10× faster",
                verdict(peer >= 10 * subject),
            )
        )
    else:
        rows.append(Row("vs pydantic-settings", "", "not installed", "", "≥ 10× faster", "skipped"))
    if two is not None:
        peer = two["prefect Secret.load"].median
        mine = two["authchain.resolve (prefect imported)"].median
        rows.append(
            Row(
                '`resolve("X")`, cached, vs Prefect `Secret.load`',
                f"{fmt_time(mine)} (Prefect imported)",
                f"`Secret.load(...).get()`, local API, {fmt_time(peer)}",
                fmt_ratio(peer / mine) + " faster",
                "≥ 10× faster",
                verdict(peer >= 10 * mine),
                "",
                {k: v.as_dict() for k, v in two.items()},
            )
        )
    else:
        why = "left out in --quick" if quick else "prefect not installed"
        rows.append(Row("vs Prefect `Secret.load`", "", why, "", "≥ 10× faster", "skipped"))
    return rows


if __name__ == "__main__":
    main(run)
