"""SSM Parameter Store's path_prefix is written the way users write it (issue 14, item 7),
against moto's server (tests/servers/moto_server.py).

In SSM a name with a slash in it is always absolute, so ``app/prod`` can only
mean ``/app/prod``; an empty inner segment or ``..`` stays a ``ConfigError``
that does not quote the setting. (Secrets Manager and GCP prefixes are not
paths: there a slash is part of the name, and they are used as written.)
"""

from __future__ import annotations

import secrets

import pytest

pytest.importorskip("boto3", reason="needs the aws extra")
pytest.importorskip("moto", reason="needs moto[server]")

from authchain import Chain, ConfigError, SecretValue
from authchain.backends.aws.source import AWSParameterStoreSource
from authchain.testing import canary
from tests.servers.moto_server import REGION, MotoServer


@pytest.mark.parametrize("form", ["{run}/prod", "{run}/prod/", "/{run}/prod/", "/{run}/prod"])
@pytest.mark.parametrize("load_path", [False, True])
def test_every_slash_form_of_path_prefix_reads_the_same_parameter(
    moto: MotoServer, form: str, load_path: bool
) -> None:
    run = f"paths-{secrets.token_hex(4)}"
    value = canary()
    moto.client("ssm").put_parameter(Name=f"/{run}/prod/DB_PASSWORD", Value=value, Type="SecureString")
    source = AWSParameterStoreSource(
        region=REGION,
        endpoint_url=moto.url,
        timeout=5.0,
        path_prefix=form.format(run=run),
        load_path=load_path,
    )
    chain = Chain([source], cache_ttl=0)
    try:
        assert chain.resolve("DB_PASSWORD") == SecretValue(value)
    finally:
        chain.close()


@pytest.mark.parametrize("bad", ["{tag}//prod", "/{tag}//prod/", "{tag}/../prod", "/../{tag}", "/{tag}/.."])
def test_inner_empty_segments_and_dot_dot_are_refused_without_the_value(bad: str) -> None:
    tag = secrets.token_hex(8)
    with pytest.raises(ConfigError) as caught:
        AWSParameterStoreSource(region=REGION, path_prefix=bad.format(tag=tag))
    assert "path_prefix" in str(caught.value)
    assert tag not in str(caught.value)
