"""Secrets on Dask workers: each worker resolves references with its own chain.

A value never has to travel through a task graph. Pass a
:class:`~authchain.SecretRef` (or a name) and, for clients,
:func:`authchain.clients.lazy`; the worker that runs the task resolves the
reference through *its* default chain, built from *its* config and
environment, with a per-worker cache and single flight (N tasks on one worker
needing the same secret make one backend call per cache TTL).

:class:`AuthchainWorkerPlugin` sets that up on every worker, now and when
workers join later: it builds the worker's default chain from its config
(``Chain.from_config``) and installs log masking, so a value a task logs by
mistake shows as ``***`` in the worker's logs. Three ways to install it::

    from authchain.dask import AuthchainWorkerPlugin, preload

    preload(client)                                 # a running cluster
    client.register_plugin(AuthchainWorkerPlugin(profile="prod"))   # the same, by hand
    # dask worker --preload authchain.dask          # the worker command line, or
    # LocalCluster(preload=["authchain.dask"]) / DaskTaskRunner(cluster_kwargs=...)

The plugin itself travels to the workers in a pickle, so it holds settings
only: a config path (read on the worker), a profile, non-secret environment
variables, never a value. Credentials reach a worker the way they reach any
process: its environment (``LocalCluster(env=...)``, the deployment), a
workload identity, or a secret store its config names.

Needs ``dask.distributed`` (``pip install "authchain[dask]"``); ``import
authchain`` never imports it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authchain._chain import Chain
from authchain._default import set_default_chain
from authchain._process import ProcessLocal
from authchain._redact import looks_like_a_credential
from authchain._scrub import scrubbed
from authchain.config import _SECRET_KEY
from authchain.errors import ConfigError
from authchain.masking import install_log_masking
from authchain.refs import is_reference, parses_as_reference

try:
    from distributed import WorkerPlugin
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f'authchain.dask needs dask.distributed: pip install "authchain[dask]" ({error})'
    ) from None

if TYPE_CHECKING:
    from distributed import Client, Worker

__all__ = ["AuthchainWorkerPlugin", "dask_setup", "preload"]

logger = logging.getLogger(__name__)

PLUGIN_NAME = "authchain"


class AuthchainWorkerPlugin(ProcessLocal, WorkerPlugin):
    """Give every Dask worker its own authchain default chain and log masking.

    On each worker, at registration and whenever a worker joins later, the
    plugin (in this order):

    1. sets the non-secret environment variables in ``env`` (restored at teardown);
    2. installs log masking (``authchain.install_log_masking()``), unless
       ``log_masking=False``;
    3. builds the chain from the worker's config (``Chain.from_config(config,
       profile=profile)``: ``config`` is a path *on the worker*; by default the
       worker's ``AUTHCHAIN_CONFIG``, else the file found from its working
       directory) and makes it the worker's default chain, so
       ``SecretRef.resolve()``, ``authchain.resolve()``, client factories and
       lazy clients use it, with one cache per worker process.

    A broken config raises at registration (``client.register_plugin`` raises
    the worker's ``ConfigError``). Teardown (plugin removed or replaced, worker
    closed) restores the previous default chain and environment and closes the
    chain and the cached clients, so replace the plugin between computations,
    not while tasks are using them.

    Args:
        config: path of an ``authchain.toml`` / ``pyproject.toml`` on the workers.
        profile: a ``[profiles.NAME]`` to apply (default: the worker's ``AUTHCHAIN_PROFILE``).
        env: environment variables to set on each worker before the chain is
            built (``VAULT_ADDR``, ``AUTHCHAIN_PROFILE``, ``PREFECT_API_URL``). The
            plugin is pickled, so these must not be secrets: a name that looks
            like a credential (``*_TOKEN``, ``*PASSWORD``, ``*_SECRET_ACCESS_KEY``,
            ``GITHUB_PAT``, ``JWT``, ``SENTRY_DSN``, ``VAULT_ROLE_ID``, ...) is
            refused unless its value is a valid reference, and so is a URL with
            a user part (``postgres://user:pw@host``) under any name.
        log_masking: install log masking on the workers (default True).

    Raises:
        ConfigError: ``env`` holds something that looks like a secret value.

    Example:
        >>> plugin = AuthchainWorkerPlugin(profile="prod", env={"VAULT_ADDR": "https://vault:8200"})
        >>> plugin
        AuthchainWorkerPlugin(config=None, profile='prod', env=['VAULT_ADDR'], log_masking=True)
    """

    name = PLUGIN_NAME

    @scrubbed  # a refused env leaves no frame holding its values
    def __init__(
        self,
        config: str | os.PathLike[str] | None = None,
        *,
        profile: str | None = None,
        env: Mapping[str, str] | None = None,
        log_masking: bool = True,
    ) -> None:
        self.config = os.fspath(config) if config is not None else None
        self.profile = profile
        self.env = _checked_env(env or {})
        self.log_masking = log_masking
        self._init_runtime()

    # Settings only travel: the chain (with its cache) and the worker's previous
    # environment stay in the process they belong to.
    _runtime_attrs = ("_chain", "_previous_chain", "_previous_env")

    def _init_runtime(self) -> None:
        self._chain: Chain | None = None
        self._previous_chain: Chain | None = None
        self._previous_env: dict[str, str | None] = {}

    def setup(self, worker: Worker) -> None:
        """Set the environment, install log masking, make the worker's chain the default."""
        self._previous_env = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        try:
            if self.log_masking:
                install_log_masking()
            chain = Chain.from_config(self.config, profile=self.profile)
        except BaseException:
            self._restore_env()
            raise
        self._chain = chain
        self._previous_chain = set_default_chain(chain)
        where = self.config or "the worker's own config"
        logger.info("authchain: worker %s uses %r from %s", getattr(worker, "address", "?"), chain, where)

    def teardown(self, worker: Worker) -> None:
        """Put back the previous default chain and environment; close this chain and its clients."""
        chain, self._chain = self._chain, None
        if chain is not None:
            current = set_default_chain(self._previous_chain)
            if current is not chain:  # someone replaced ours meanwhile: leave theirs in place
                set_default_chain(current)
            chain.close()
            from authchain.clients import clear

            clear()
        self._previous_chain = None
        self._restore_env()

    def _restore_env(self) -> None:
        for name, value in self._previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._previous_env = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(config={self.config!r}, profile={self.profile!r}, "
            f"env={sorted(self.env)!r}, log_masking={self.log_masking!r})"
        )


def preload(
    client: Client,
    config: str | os.PathLike[str] | None = None,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    log_masking: bool = True,
) -> AuthchainWorkerPlugin:
    """Register an :class:`AuthchainWorkerPlugin` on every worker of ``client``'s cluster.

    Workers that join later get it too. Registering again (for example with
    another profile) replaces the previous one, whose teardown runs first.

    Args:
        client: a synchronous ``distributed.Client``. With an asynchronous one,
            ``await client.register_plugin(AuthchainWorkerPlugin(...))``.
        config, profile, env, log_masking: as for :class:`AuthchainWorkerPlugin`.

    Returns:
        The registered plugin.

    Raises:
        ConfigError: ``env`` holds a secret-looking value, or a worker's config is broken.

    Example::

        from distributed import Client
        from authchain.dask import preload

        client = Client("tcp://scheduler:8786")
        preload(client, profile="prod")
        client.map(load_partition, [SecretRef.parse("vault://secret/db#password")] * 8)
    """
    if getattr(client, "asynchronous", False):
        raise TypeError(
            "preload() needs a synchronous Client; with an asynchronous one use "
            "`await client.register_plugin(AuthchainWorkerPlugin(...))`"
        )
    plugin = AuthchainWorkerPlugin(config, profile=profile, env=env, log_masking=log_masking)
    client.register_plugin(plugin)
    return plugin


async def dask_setup(worker: Any) -> None:
    """Preload entry point: ``dask worker --preload authchain.dask``.

    Also ``LocalCluster(preload=["authchain.dask"])`` and
    ``DaskTaskRunner(cluster_kwargs={"preload": ["authchain.dask"]})``. Installs
    :class:`AuthchainWorkerPlugin` with the worker's own config and environment
    (``AUTHCHAIN_CONFIG``, ``AUTHCHAIN_PROFILE``).
    """
    from distributed import Worker

    if not isinstance(worker, Worker):
        raise TypeError(f"authchain.dask is a worker preload, not a {type(worker).__name__} one")
    await worker.plugin_add(AuthchainWorkerPlugin(), name=PLUGIN_NAME, catch_errors=False)


# Name parts that make a variable a credential: whole ``_``-separated parts
# (``GITHUB_PAT``, ``JWT``, ``SENTRY_DSN``) and words found anywhere in a name
# (``PGPASSWORD``, ``MYSQL_PWD``, ``VAULT_ROLE_ID``).
_CREDENTIAL_PARTS = frozenset(
    {
        "AUTH", "AUTHORIZATION", "CERT", "COOKIE", "CREDENTIAL", "CREDENTIALS", "CREDS",
        "DSN", "JWT", "KEY", "KEYS", "OTP", "PASS", "PAT", "PIN", "PRIVATE", "PW",
        "PWD", "SESSION", "SIGNATURE", "SALT", "BEARER", "SIGNING", "HMAC", "SAS", "SIG", "WEBHOOK",
    }
)  # fmt: skip
_CREDENTIAL_WORDS = (
    "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "ROLE_ID", "ROLEID",
    "SECRET_ID", "PRIVATE_KEY", "ACCESS_KEY", "CONNECTION_STRING", "CONN_STR", "DATABASE_URL",
)  # fmt: skip


def _credential_name(name: str) -> bool:
    upper = name.upper()
    parts = set(re.split(r"[^A-Z0-9]+", upper))
    return bool(parts & _CREDENTIAL_PARTS) or any(word in upper for word in _CREDENTIAL_WORDS)


def _checked_env(env: Mapping[str, str]) -> dict[str, str]:
    """The plugin's ``env``: references, or settings that cannot be credentials.

    The plugin is pickled to every worker, so a value in it travels in clear.
    A credential-looking name (``*_TOKEN``, ``PGPASSWORD``, ``GITHUB_PAT``,
    ``JWT``, ``SENTRY_DSN``, ``VAULT_ROLE_ID``, ...) needs a reference as its
    value, and a value shaped like a credential is refused under any name: a
    URL with a user part (``postgres://user:pw@host``, ``https://key@sentry``)
    or a credential in its query, a webhook URL, a PEM block, a JWT, a token
    format such as ``ghp_...`` (see ``looks_like_a_credential``). No message
    quotes a value.
    """
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name:
            raise ConfigError("env must map variable names to strings")
        if parses_as_reference(value):
            checked[name] = value
            continue
        if is_reference(value):
            raise ConfigError(
                f"env[{name!r}] is not a valid reference (value not shown); the worker plugin "
                "travels in a pickle, so it takes references such as vault://secret/app#password"
            )
        if _SECRET_KEY.search(name) or _credential_name(name) or looks_like_a_credential(value):
            raise ConfigError(
                f"env[{name!r}] looks like a credential, by its name or the shape of its value (value not "
                "shown), and the worker plugin "
                "travels in a pickle: give workers their credentials through their own environment "
                "(LocalCluster(env=...), the deployment) or a secret store, or pass a reference"
            )
        checked[name] = value
    return checked
