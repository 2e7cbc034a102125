"""Lazy clients: pickled small and clean, built where they are used."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest

from authchain import ConfigError, SecretRef, SecretValue
from authchain.clients import aws_client, clear, lazy, vault_client
from authchain.clients._base import CACHE, fingerprint
from authchain.testing import canary
from tests.servers.moto_server import REGION, MotoServer

CHILD = """
import sys, cloudpickle
client = cloudpickle.loads(sys.stdin.buffer.read())
name = sys.argv[1]
client.put_parameter(Name=name, Value="from-the-child", Type="String")
print(client.get_parameter(Name=name)["Parameter"]["Value"])
"""


def test_a_lazy_client_round_trips_through_cloudpickle_into_another_process(
    moto: MotoServer, tmp_path: Path
) -> None:
    clear()
    client = lazy(aws_client, "ssm", endpoint_url=moto.url, region_name=REGION)
    data = cloudpickle.dumps(client)
    assert len(CACHE) == 0, "making a lazy client builds nothing"
    assert len(data) < 4096
    assert os.environ["AWS_SECRET_ACCESS_KEY"].encode() not in data
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "/lazy/child"],
        input=data,
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().strip() == "from-the-child"


def test_a_used_lazy_client_pickles_without_its_client(moto: MotoServer) -> None:
    client = lazy(aws_client, "ssm", endpoint_url=moto.url, region_name=REGION)
    client.put_parameter(Name="/lazy/local", Value="v", Type="String")
    clone = pickle.loads(pickle.dumps(client))  # noqa: S301 - our own bytes
    assert clone._client is None
    assert clone.get_parameter(Name="/lazy/local")["Parameter"]["Value"] == "v"
    assert repr(client) == "lazy(aws_client, 'ssm', endpoint_url=..., region_name=...)"


def test_lazy_refuses_credential_values_but_takes_references() -> None:
    with pytest.raises(ConfigError, match="travels in pickles"):
        lazy(aws_client, "s3", credentials={"ACCESS_KEY": "a", "SECRET_ACCESS_KEY": "b"})
    with pytest.raises(ConfigError, match="travels in pickles"):
        lazy(vault_client, token=SecretValue("not-a-reference"))
    with pytest.raises(ConfigError, match="travels in pickles"):
        lazy(aws_client, "s3", aws_secret_access_key="not-a-reference")  # boto3's own argument
    lazy(aws_client, "s3", credentials="aws-sm://prod/aws-creds")
    lazy(aws_client, "s3", credentials=SecretRef.parse("env://AWS_CREDS"))


def test_fingerprints_hold_no_secret() -> None:
    secret = canary()
    key = fingerprint("aws", {"region": "eu-west-1"}, {"credentials": SecretValue(secret)})
    assert secret not in key
    assert key != fingerprint("aws", {"region": "eu-west-1"}, {"credentials": SecretValue(canary())})
    assert key == fingerprint("aws", {"region": "eu-west-1"}, {"credentials": SecretValue(secret)})
