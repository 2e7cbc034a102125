"""moto's real HTTP server (``ThreadedMotoServer``) on 127.0.0.1 for the test session.

Fixtures:

- ``moto_server`` (session): starts the server on a free port, silences the
  ``werkzeug`` request log, and for the whole session points boto3 at it and
  nowhere else: every ``AWS_*`` variable is cleared, ``AWS_ENDPOINT_URL`` is
  the server (so even a client built without ``endpoint_url`` lands here),
  made-up keys and ``us-east-1`` are set, the shared config files point at
  ``os.devnull`` and the EC2 metadata service is disabled. Stopped at the end
  of the session, whatever happened.
- ``moto`` (function): the same server with all state reset (``POST
  /moto-api/reset``) and IAM enforcement off.
- ``moto_proxy`` (function): a counting :class:`~tests.servers.proxy.TCPProxy`
  in front of it.

moto keeps its state in module globals (one logical server per process),
per region; its IAM layer is off unless :meth:`MotoServer.enforce_iam` turns
it on.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.servers.proxy import TCPProxy

__all__ = ["MADE_UP_KEYS", "REGION", "MotoServer", "moto", "moto_proxy", "moto_server"]

REGION = "us-east-1"
MADE_UP_KEYS = {"aws_access_key_id": "AKIAAUTHCHAINTEST000", "aws_secret_access_key": "made-up-secret-key"}


@dataclass(frozen=True)
class MotoServer:
    host: str
    port: int
    _clients: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _post(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(  # noqa: S310 - a fixed http://127.0.0.1 URL
            self.url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def reset(self) -> None:
        """Forget every secret, parameter, IAM user and policy."""
        self._post("/moto-api/reset")

    def enforce_iam(self, on: bool = True) -> None:
        """Check every request's signature and IAM policy (moto's ``/moto-api/reset-auth``).

        With it on, only keys of IAM users created in moto work; seed first.
        """
        self._post("/moto-api/reset-auth", b"0" if on else b"inf")

    def iam_user(self, actions: list[str]) -> dict[str, str]:
        """A moto IAM user allowed exactly ``actions`` on every resource; returns its boto3 keys."""
        import json
        import secrets

        iam = self.client("iam")
        user = f"user-{secrets.token_hex(6)}"
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        if actions:
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
            iam.put_user_policy(UserName=user, PolicyName="authchain-test", PolicyDocument=json.dumps(policy))
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    def client(self, service: str, region: str = REGION, **keys: str) -> Any:
        """An admin boto3 client for seeding (made-up keys unless ``keys`` are given).

        Cached for the session: a client holds no moto state, and a new boto3
        session costs ≈0.2 s.
        """
        import boto3

        keys = keys or MADE_UP_KEYS
        cache_key = (service, region, tuple(sorted(keys.items())))
        if cache_key not in self._clients:
            session = boto3.session.Session(**keys)
            self._clients[cache_key] = session.client(service, region_name=region, endpoint_url=self.url)
        return self._clients[cache_key]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    from moto.server import ThreadedMotoServer

    werkzeug = logging.getLogger("werkzeug")
    old_level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    env = pytest.MonkeyPatch()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            env.delenv(name)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_ACCESS_KEY_ID", MADE_UP_KEYS["aws_access_key_id"])
        env.setenv("AWS_SECRET_ACCESS_KEY", MADE_UP_KEYS["aws_secret_access_key"])
        env.setenv("AWS_DEFAULT_REGION", REGION)
        server.start()
        try:
            host, port = server.get_host_and_port()
            moto = MotoServer(host, port)
            env.setenv("AWS_ENDPOINT_URL", moto.url)
            yield moto
        finally:
            for client in moto._clients.values():
                client.close()
            server.stop()
    finally:
        env.undo()
        werkzeug.setLevel(old_level)


@pytest.fixture
def moto(moto_server: MotoServer) -> Iterator[MotoServer]:
    moto_server.enforce_iam(False)
    moto_server.reset()
    yield moto_server
    moto_server.enforce_iam(False)


@pytest.fixture
def moto_proxy(moto: MotoServer) -> Iterator[TCPProxy]:
    with TCPProxy((moto.host, moto.port)) as proxy:
        yield proxy
