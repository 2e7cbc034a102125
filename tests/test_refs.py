"""SecretRef.parse: every scheme in DESIGN.md "References", good and malformed, plus round trips."""

from __future__ import annotations

import pickle
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authchain import ConfigError, SecretRef
from authchain.refs import KNOWN_SCHEMES, is_reference

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
VERSION_ID = "01234567-89ab-cdef-0123-456789abcdef"

# text, scheme, location, fragment, params
GOOD: list[tuple[str, str, str, str | None, dict[str, str]]] = [
    ("env://DB_PASSWORD", "env", "DB_PASSWORD", None, {}),
    ("env://APP_CREDS#user", "env", "APP_CREDS", "user", {}),
    ("env://lower.case-name", "env", "lower.case-name", None, {}),
    ("dotenv://.env#DB_PASSWORD", "dotenv", ".env", "DB_PASSWORD", {}),
    ("dotenv://config/prod.env#API_KEY", "dotenv", "config/prod.env", "API_KEY", {}),
    ("dotenv:///abs/path/.env#KEY", "dotenv", "/abs/path/.env", "KEY", {}),
    ("dotenv://#KEY", "dotenv", "", "KEY", {}),
    ("keyring://my-service/alice", "keyring", "my-service/alice", None, {}),
    ("keyring://svc/bob@example.com#token", "keyring", "svc/bob@example.com", "token", {}),
    ("vault://secret/app/db#password", "vault", "secret/app/db", "password", {}),
    ("vault://kv/app", "vault", "kv/app", None, {}),
    ("vault://secret/app?kv=1#password", "vault", "secret/app", "password", {"kv": "1"}),
    ("vault://secret/app?kv=2", "vault", "secret/app", None, {"kv": "2"}),
    ("vault://secret/app/db?version=3#password", "vault", "secret/app/db", "password", {"version": "3"}),
    ("vault://secret/app/db#password?version=3", "vault", "secret/app/db", "password", {"version": "3"}),
    ("vault://secret/a.b/c_d@e+f=g,h-i", "vault", "secret/a.b/c_d@e+f=g,h-i", None, {}),
    ("aws-sm://prod/app/db#password", "aws-sm", "prod/app/db", "password", {}),
    ("aws-sm://my-secret", "aws-sm", "my-secret", None, {}),
    (f"aws-sm://{ARN}", "aws-sm", ARN, None, {}),
    (f"aws-sm://{ARN}#user", "aws-sm", ARN, "user", {}),
    ("aws-sm://my-secret?stage=AWSPREVIOUS", "aws-sm", "my-secret", None, {"stage": "AWSPREVIOUS"}),
    (f"aws-sm://my-secret?version_id={VERSION_ID}", "aws-sm", "my-secret", None, {"version_id": VERSION_ID}),
    ("aws-sm://my-secret?region=eu-west-1#k", "aws-sm", "my-secret", "k", {"region": "eu-west-1"}),
    (
        "aws-sm://my-secret?stage=AWSCURRENT&region=us-gov-west-1",
        "aws-sm",
        "my-secret",
        None,
        {"stage": "AWSCURRENT", "region": "us-gov-west-1"},
    ),
    ("aws-ssm:///app/db/password", "aws-ssm", "/app/db/password", None, {}),
    ("aws-ssm://plain-name", "aws-ssm", "plain-name", None, {}),
    ("aws-ssm:///app/db/password:3", "aws-ssm", "/app/db/password:3", None, {}),
    ("aws-ssm:///app/db/password:prod-label", "aws-ssm", "/app/db/password:prod-label", None, {}),
    ("aws-ssm:///app/db?version=7", "aws-ssm", "/app/db", None, {"version": "7"}),
    ("aws-ssm:///app/db?label=blue", "aws-ssm", "/app/db", None, {"label": "blue"}),
    (
        "aws-ssm:///app/db?region=ap-southeast-2#user",
        "aws-ssm",
        "/app/db",
        "user",
        {"region": "ap-southeast-2"},
    ),
    (
        "gcp-sm://projects/my-proj/secrets/db-pass/versions/latest",
        "gcp-sm",
        "projects/my-proj/secrets/db-pass/versions/latest",
        None,
        {},
    ),
    (
        "gcp-sm://projects/my-proj/secrets/db/versions/5#password",
        "gcp-sm",
        "projects/my-proj/secrets/db/versions/5",
        "password",
        {},
    ),
    ("gcp-sm://projects/p1/secrets/db", "gcp-sm", "projects/p1/secrets/db", None, {}),
    ("gcp-sm://db-pass", "gcp-sm", "db-pass", None, {}),
    ("azure-kv://my-vault/db-pass", "azure-kv", "my-vault/db-pass", None, {}),
    ("azure-kv://my-vault/db/0123abcd#user", "azure-kv", "my-vault/db/0123abcd", "user", {}),
    ("gcp-sm://db_pass/versions/2#user", "gcp-sm", "db_pass/versions/2", "user", {}),
    ("prefect://my-db-password", "prefect", "my-db-password", None, {}),
    ("prefect://creds#user", "prefect", "creds", "user", {}),
    ("memory://ANY_NAME", "memory", "ANY_NAME", None, {}),
    ("memory://x#field", "memory", "x", "field", {}),
]


@pytest.mark.parametrize(("text", "scheme", "location", "fragment", "params"), GOOD)
def test_good_references_parse(
    text: str, scheme: str, location: str, fragment: str | None, params: dict[str, str]
) -> None:
    ref = SecretRef.parse(text)
    assert ref.scheme == scheme
    assert ref.location == location
    assert ref.fragment == fragment
    assert dict(ref.params) == params
    assert ref.param_map == params
    for key, value in params.items():
        assert ref.param(key) == value
    assert ref.param("absent") is None
    assert ref.param("absent", "dflt") == "dflt"


@pytest.mark.parametrize("text", [case[0] for case in GOOD])
def test_good_references_round_trip(text: str) -> None:
    ref = SecretRef.parse(text)
    assert SecretRef.parse(str(ref)) == ref
    assert str(SecretRef.parse(str(ref))) == str(ref)
    assert is_reference(text)


def test_str_puts_query_before_fragment_and_sorts_params() -> None:
    ref = SecretRef.parse("aws-sm://s#k?stage=B&region=eu-west-1")
    assert str(ref) == "aws-sm://s?region=eu-west-1&stage=B#k"
    assert SecretRef.parse("aws-sm://s?stage=B&region=eu-west-1#k") == ref


def test_parse_accepts_a_secret_ref_and_returns_it() -> None:
    ref = SecretRef.parse("env://X")
    assert SecretRef.parse(ref) is ref


def test_json_field_is_the_fragment_except_for_dotenv() -> None:
    assert SecretRef.parse("vault://secret/app#password").field == "password"
    assert SecretRef.parse("env://X").field is None
    # for dotenv the fragment names the variable, not a JSON field
    dotenv = SecretRef.parse("dotenv://.env#KEY")
    assert dotenv.fragment == "KEY"
    assert dotenv.field is None


def test_refs_are_hashable_and_pickle() -> None:
    ref = SecretRef.parse("vault://secret/app/db?version=2#password")
    assert pickle.loads(pickle.dumps(ref)) == ref  # noqa: S301 - our own data
    assert {ref: 1}[SecretRef.parse(str(ref))] == 1


# -- malformed references -------------------------------------------------------

VAULT_FORM = "vault://MOUNT/PATH[?kv=1|2][&version=N][#KEY]"
AWS_SM_FORM = "aws-sm://SECRET_ID_OR_ARN[?stage=LABEL|version_id=ID][&region=REGION][#KEY]"
AWS_SSM_FORM = "aws-ssm:///PATH/NAME[:VERSION][?version=N|label=L][&region=REGION][#KEY]"
GCP_SHAPE = "expected projects/P[/locations/L]/secrets/S[/versions/V]"
GCP_FORM = "gcp-sm://projects/P[/locations/L]/secrets/S[/versions/V][#KEY] or gcp-sm://S[#KEY]"

# text, fragment of the "what is wrong" message, expected form shown
BAD: list[tuple[str, str, str]] = [
    ("env://", "is not a variable name", "env://NAME[#KEY]"),
    ("env://1ABC", "the location is not a variable name", "env://NAME[#KEY]"),
    ("env://A/B", "is not a variable name", "env://NAME[#KEY]"),
    ("env://A#", "empty #KEY", "env://NAME[#KEY]"),
    ("env://A?x=1", "unknown parameter (allowed: none)", "env://NAME[#KEY]"),
    ("env://A B", "space or control character", "env://NAME[#KEY]"),
    ("env://A\tB", "space or control character", "env://NAME[#KEY]"),
    ("dotenv://.env", "the variable to read is missing (#KEY)", "dotenv://[PATH]#KEY"),
    ("dotenv://.env#1BAD", "is not a variable name", "dotenv://[PATH]#KEY"),
    ("keyring://service-only", "needs SERVICE/USERNAME", "keyring://SERVICE/USERNAME[#KEY]"),
    ("keyring:///user", "needs SERVICE/USERNAME", "keyring://SERVICE/USERNAME[#KEY]"),
    ("keyring://svc/", "needs SERVICE/USERNAME", "keyring://SERVICE/USERNAME[#KEY]"),
    ("vault://secret", "needs a mount and a path", VAULT_FORM),
    ("vault://secret/app?kv=3", "kv must be 1 or 2", VAULT_FORM),
    ("vault://secret/app?version=0", "version must be a positive integer", VAULT_FORM),
    ("vault://secret/app?version=abc", "version must be a positive integer", VAULT_FORM),
    ("vault://secret/app?version=-1", "version must be a positive integer", VAULT_FORM),
    ("vault://secret/app?kv=1&version=2", "version needs KV v2", VAULT_FORM),
    ("vault://secret/app?stage=x", "unknown parameter (allowed: kv, version)", VAULT_FORM),
    ("vault://secret/app?version", "malformed parameter (expected NAME=VALUE)", VAULT_FORM),
    ("vault://secret/app?version=", "malformed parameter", VAULT_FORM),
    ("vault://secret/app?=2", "malformed parameter", VAULT_FORM),
    ("aws-sm://arn:aws:not-an-arn", "neither a secret name", AWS_SM_FORM),
    ("aws-sm://bad!name", "neither a secret name", AWS_SM_FORM),
    ("aws-sm://s?stage=bad!label", "stage is not a valid staging label", AWS_SM_FORM),
    ("aws-sm://s?version_id=short", "version_id is not a version id", AWS_SM_FORM),
    ("aws-sm://s?region=mars", "the region is not a region name", AWS_SM_FORM),
    ("aws-sm://s?kv=1", "unknown parameter", AWS_SM_FORM),
    ("aws-ssm://", "is not a parameter name", AWS_SSM_FORM),
    ("aws-ssm:///a//b", "is not a parameter name", AWS_SSM_FORM),
    ("aws-ssm:///app/db:", "selector is empty or invalid", AWS_SSM_FORM),
    ("aws-ssm:///app/db:3?version=3", "either as :N or ?version=N", AWS_SSM_FORM),
    ("aws-ssm:///app/db?version=x", "version must be a positive integer", AWS_SSM_FORM),
    ("aws-ssm:///app/db?version=2&label=blue", "a version or a label, not both", AWS_SSM_FORM),
    ("aws-ssm:///app/db?region=nowhere", "is not a region", AWS_SSM_FORM),
    ("gcp-sm://projects/Bad_Proj/secrets/s", "the project is not a project id", GCP_FORM),
    ("gcp-sm://projects/p/secrets", GCP_SHAPE, GCP_FORM),
    ("gcp-sm://projects/p/keys/s", GCP_SHAPE, GCP_FORM),
    ("gcp-sm://projects/p/secrets/s/versions", GCP_SHAPE, GCP_FORM),
    ("gcp-sm://projects/p/secrets/s/vers/1", "expected .../versions/V", GCP_FORM),
    ("gcp-sm://a/b", "expected S or S/versions/V", GCP_FORM),
    ("gcp-sm://bad.id", "the secret is not a secret id", GCP_FORM),
    ("gcp-sm://", "is not a secret id", GCP_FORM),
    ("prefect://Bad_Block", "the location is not a block name", "prefect://BLOCK_NAME[#KEY]"),
    ("prefect://", "is not a block name", "prefect://BLOCK_NAME[#KEY]"),
    ("memory://", "the location is empty", "memory://NAME[#KEY]"),
]


@pytest.mark.parametrize(("text", "problem", "form"), BAD)
def test_malformed_references_say_what_is_wrong(text: str, problem: str, form: str) -> None:
    with pytest.raises(ConfigError) as info:
        SecretRef.parse(text)
    message = str(info.value)
    assert problem in message
    assert form in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("secret/../other", "'.' and '..' are not allowed"),
        ("secret/./app", "'.' and '..' are not allowed"),
        ("../secret/app", "'.' and '..' are not allowed"),
        ("secret//app", "empty segment"),
        ("/secret/app", "empty segment"),
        ("secret/app/", "empty segment"),
        ("secret/app!", "has characters outside [A-Za-z0-9_.@+=,-]"),
        ("secret/app$x", "has characters outside"),
        ("secret/ap%2e", "has characters outside"),
        ("secret/\u00e4pp", "has characters outside"),
    ],
)
def test_vault_path_validation(location: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="malformed vault:// reference") as info:
        SecretRef.parse(f"vault://{location}#password")
    assert problem in str(info.value)
    assert VAULT_FORM in str(info.value)


def test_not_a_reference_at_all() -> None:
    with pytest.raises(ConfigError) as info:
        SecretRef.parse("DB_PASSWORD")
    message = str(info.value)
    assert "is not a reference" in message
    assert "SCHEME://" in message
    assert "env://DB_PASSWORD" in message


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        SecretRef.parse("postgres://user@host/db")
    message = str(info.value)
    assert "unknown reference scheme (not shown)" in message
    assert "postgres" not in message.split(";")[0], "the scheme given is not quoted"
    for scheme in ("env", "dotenv", "vault", "aws-sm", "aws-ssm", "gcp-sm", "keyring", "prefect"):
        assert scheme in message


def test_repeated_parameter_is_rejected() -> None:
    with pytest.raises(ConfigError, match="repeats the parameter 'version'"):
        SecretRef.parse("vault://secret/app?version=1&version=2")


@pytest.mark.parametrize("value", [None, 5, b"env://X", ["env://X"]])
def test_non_string_is_a_config_error(value: object) -> None:
    with pytest.raises(ConfigError, match="must be a string"):
        SecretRef.parse(value)  # type: ignore[arg-type]


def test_long_text_is_shortened_in_messages() -> None:
    text = "x" * 500
    with pytest.raises(ConfigError) as info:
        SecretRef.parse(text)
    assert text not in str(info.value)
    assert "..." in str(info.value)


# -- is_reference -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "env://X",
        "vault://secret/app#k",
        "aws-sm://s",
        "aws-ssm:///p",
        "gcp-sm://s",
        "keyring://s/u",
        "prefect://b",
        "memory://x",
        "dotenv://.env#K",
        "vault://malformed",  # a known scheme, even when the rest is wrong
    ],
)
def test_is_reference_true_for_known_schemes(text: str) -> None:
    assert is_reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "postgres://user:pw@localhost/db",
        "https://example.com/path",
        "http://127.0.0.1:8080",
        "s3://bucket/key",
        "DB_PASSWORD",
        "",
        "env:/X",
        "ENV://X",
        " env://X",
    ],
)
def test_is_reference_false_for_other_text(text: str) -> None:
    assert not is_reference(text)


def test_is_reference_of_non_strings() -> None:
    assert is_reference(SecretRef.parse("env://X"))
    assert not is_reference(None)
    assert not is_reference(42)
    assert not is_reference(b"env://X")


# -- property tests -------------------------------------------------------------

SCHEMES = sorted(KNOWN_SCHEMES)
URLISH = st.text(
    alphabet=string.ascii_letters + string.digits + "/_.-:@+=,#?&%~ $!" + "\u00e4\x00\n",
    max_size=60,
)


def _parse_or_config_error(text: str) -> SecretRef | None:
    try:
        ref = SecretRef.parse(text)
    except ConfigError:
        return None
    assert isinstance(ref, SecretRef)
    return ref


def test_known_schemes_are_the_design_ones() -> None:
    assert set(SCHEMES) == {
        "env",
        "dotenv",
        "keyring",
        "vault",
        "aws-sm",
        "aws-ssm",
        "gcp-sm",
        "prefect",
        "files",
        "azure-kv",
    }


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_of_any_text_is_a_ref_or_a_config_error(text: str) -> None:
    ref = _parse_or_config_error(text)
    if ref is not None:
        assert SecretRef.parse(str(ref)) == ref


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=st.sampled_from(SCHEMES), rest=st.text())
def test_parse_of_scheme_and_any_text(scheme: str, rest: str) -> None:
    ref = _parse_or_config_error(f"{scheme}://{rest}")
    if ref is not None:
        assert ref.scheme == scheme
        assert SecretRef.parse(str(ref)) == ref


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=st.sampled_from(SCHEMES), rest=URLISH)
def test_parse_of_scheme_and_url_like_text_round_trips(scheme: str, rest: str) -> None:
    ref = _parse_or_config_error(f"{scheme}://{rest}")
    if ref is not None:
        assert ref.scheme == scheme
        again = SecretRef.parse(str(ref))
        assert again == ref
        assert str(again) == str(ref)


SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "_.-@+=,:!", min_size=0, max_size=12)
PARAM_NAME = st.sampled_from(["kv", "version", "stage", "version_id", "region", "label", "x"])
PARAM_VALUE = st.sampled_from(["1", "2", "7", "0", "AWSPREVIOUS", "eu-west-1", VERSION_ID, "blue", "a=b"])


@st.composite
def structured_refs(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(SCHEMES))
    location = "/".join(draw(st.lists(SEGMENT, min_size=1, max_size=4)))
    params = draw(st.lists(st.tuples(PARAM_NAME, PARAM_VALUE), max_size=2))
    query = "&".join(f"{key}={value}" for key, value in params)
    fragment = draw(st.none() | SEGMENT)
    text = f"{scheme}://{location}"
    if query:
        text += f"?{query}"
    if fragment is not None:
        text += f"#{fragment}"
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structured_refs())
def test_structured_references_parse_and_round_trip(text: str) -> None:
    ref = _parse_or_config_error(text)
    if ref is not None:
        again = SecretRef.parse(str(ref))
        assert again == ref
        assert str(again) == str(ref)
