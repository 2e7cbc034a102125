"""``check`` says when a misconfiguration makes every lookup miss (issue 13, item 6), on real servers.

A wrong AWS region or prefix, a wrong GCP project or prefix, and a keyring that
cannot hold anything (the fail or the null backend) all answer "not found" for
every name; ``check`` is where that is caught: it names the region / project /
backend it talked to and reports ``misconfigured`` (``unavailable`` for a
keyring that is off). A plaintext file keyring is named with its file. Planted
values never appear in any report. (Vault's mount and KV version checks are in
test_reads.py.)
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from authchain.sources.base import NotFound
from authchain.testing import canary
from authchain.testing.contract import assert_not_leaked
from tests.hardening.conftest import GCP_PROJECT, make_backend

WRONG_REGION = "eu-west-1"


def aws_like(backend: Any, **changes: Any) -> Any:
    """A source like ``backend.source`` (same class and settings) with ``changes``."""
    source = backend.source
    settings: dict[str, Any] = {
        "region": source.region,
        "endpoint_url": source.endpoint_url,
        "timeout": 5.0,
        "name": source.name,
    }
    if backend.kind == "aws-sm":
        settings["prefix"] = source.prefix
    else:
        settings["path_prefix"] = source.path_prefix
    settings.update(changes)
    return type(source)(**settings)


@pytest.mark.parametrize("kind", ["aws-sm", "aws-ssm"])
def test_aws_check_names_the_region_and_flags_one_without_the_prefix(
    kind: str, request: pytest.FixtureRequest
) -> None:
    backend = make_backend(kind, request)
    value = canary("aws")
    backend.put("DB_PASSWORD", value)
    proxy = backend.extras["proxy"]

    right = backend.source.check()
    assert right.status == "ok", right.detail
    assert "us-east-1" in right.detail
    assert backend.extras["prefix"].rstrip("/") in right.detail

    proxy.clear()
    wrong_region = aws_like(backend, region=WRONG_REGION)
    report = wrong_region.check()
    assert report.status == "misconfigured"
    assert WRONG_REGION in report.detail
    assert "every lookup would miss" in report.detail
    assert len(proxy.requests) == 1  # one cheap call
    # What check warns about: there, the name that exists in us-east-1 is "not found".
    assert isinstance(wrong_region.get(wrong_region.key_for("DB_PASSWORD")), NotFound)

    other = f"/o{secrets.token_hex(4)}" if kind == "aws-ssm" else f"o{secrets.token_hex(4)}/"
    wrong_prefix = aws_like(backend, **({"path_prefix": other} if kind == "aws-ssm" else {"prefix": other}))
    report_prefix = wrong_prefix.check()
    assert report_prefix.status == "misconfigured"
    assert other.rstrip("/") in report_prefix.detail
    for shown in (right, report, report_prefix):
        assert_not_leaked(value, shown.detail, "check")
        assert_not_leaked(value, repr(shown), "check")


def test_gcp_check_flags_a_project_or_prefix_with_nothing_to_read(request: pytest.FixtureRequest) -> None:
    from authchain.backends.gcp.source import GCPSecretManagerSource

    backend = make_backend("gcp-sm", request)
    value = canary("gcp")
    backend.put("DB_PASSWORD", value)
    fake = backend.extras["fake"]
    prefix = backend.extras["prefix"]

    right = backend.source.check()
    assert right.status == "ok", right.detail
    assert f"projects/{GCP_PROJECT}" in right.detail

    reports = [right]
    for project, other_prefix in ((f"wrong-{secrets.token_hex(3)}", prefix), (GCP_PROJECT, "nothing_here_")):
        source = GCPSecretManagerSource(
            project=project, prefix=other_prefix, endpoint=fake.endpoint, environ={}, timeout=5.0
        )
        request.addfinalizer(source.close)
        report = source.check()
        assert report.status == "misconfigured", report.detail
        assert f"projects/{project}" in report.detail
        assert "every lookup would miss" in report.detail
        assert isinstance(source.get(source.key_for("DB_PASSWORD")), NotFound)
        reports.append(report)
    for report in reports:
        assert_not_leaked(value, report.detail, "check")


def test_the_gcp_fake_filters_list_secrets_by_name_like_the_service(request: pytest.FixtureRequest) -> None:
    from google.api_core import exceptions

    backend = make_backend("gcp-sm", request)
    prefix = backend.extras["prefix"]
    backend.put("A", canary())
    backend.put("B", canary())
    client = backend.extras["fake"].client()
    parent = f"projects/{GCP_PROJECT}"
    found = [s.name for s in client.list_secrets(request={"parent": parent, "filter": f"name:{prefix}"})]
    assert sorted(found) == [f"{parent}/secrets/{prefix}A", f"{parent}/secrets/{prefix}B"]
    first = client.list_secrets(request={"parent": parent, "filter": f"name:{prefix}", "page_size": 1})
    assert len(first.secrets) == 1  # the first page only (the pager's own fields)
    assert first.next_page_token
    with pytest.raises(exceptions.InvalidArgument):
        list(client.list_secrets(request={"parent": parent, "filter": "labels.env=prod"}))


def test_keyring_check_names_a_plaintext_file_backend(tmp_path: Path) -> None:
    pytest.importorskip("keyrings.alt")
    from keyrings.alt.file import PlaintextKeyring

    from authchain.backends.keyring.source import KeyringSource

    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "plain.cfg")
    value = canary("keyring")
    backend.set_password("svc", "DB_PASSWORD", value)
    report = KeyringSource(service="svc", backend=backend).check()
    assert report.status == "ok"
    assert "PlaintextKeyring stores secrets unencrypted" in report.detail
    assert str(tmp_path / "plain.cfg") in report.detail
    assert_not_leaked(value, report.detail, "check")


@pytest.mark.parametrize(
    ("backend", "why"),
    [
        ("keyring.backends.null.Keyring", "turned off"),
        ("keyring.backends.fail.Keyring", "no keyring backend"),
    ],
)
def test_keyring_check_says_when_every_lookup_misses(backend: str, why: str) -> None:
    pytest.importorskip("keyring")
    from authchain.backends.keyring.source import KeyringSource

    report = KeyringSource(service="svc", backend=backend).check()
    assert report.status == "unavailable"
    assert why in report.detail
    assert "every lookup misses" in report.detail
