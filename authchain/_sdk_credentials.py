"""Register the credentials the SDKs find or obtain on their own with the masker.

The chain registers every value it resolves, but some credentials never pass
through it: a Vault token hvac reads from ``VAULT_TOKEN`` or ``~/.vault-token``,
the token an AppRole/JWT/Kubernetes login returns, AWS keys boto3 finds in the
environment, a shared credentials file or an ``AssumeRole`` answer, and Google
access tokens minted on refresh. Each helper here is called at the one place
where such a credential enters the library, so that whatever later prints it
(a log record, SDK error text, ``authchain run``'s child output) prints
``***`` instead:

- Vault: :func:`register` where the source puts a token on its client and
  where it reads ``jwt_path`` (``authchain.backends.vault.source``);
- AWS: :func:`watch_botocore_session` on every botocore session the library
  makes (sources and client factories share ``_botocore_session``): each
  request registers the keys it is about to be signed with (whoever found
  them), and credentials issued by STS/SSO are registered from the response
  body before botocore parses (and, at DEBUG, logs) it;
- Google: :func:`watch_google_credentials` on every credentials object the
  library loads or gets from ``google.auth.default()``: its static secrets
  now, each access token after every refresh.

:func:`scrub_headers` is the second line of defence for SDK error text:
header-looking fragments (``X-Vault-Token: ...``, ``X-Amz-Security-Token=...``,
``Authorization: Bearer ...``) lose their values even when the value was
never registered.

Nothing here imports an SDK: the helpers receive SDK objects from code that
already imported them.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

from authchain import masking
from authchain.errors import ConfigError

__all__ = [
    "register",
    "register_adc_file",
    "register_aws_credentials",
    "register_prefect_api_credentials",
    "register_service_account_key",
    "scrub_headers",
    "watch_botocore_session",
    "watch_google_credentials",
]

_HEADER_NAMES = (
    "x-vault-token",
    "x-amz-security-token",
    "x-amz-credential",
    "x-goog-iam-authorization-token",
    "x-api-key",
    "proxy-authorization",
    "authorization",
    "set-cookie",
    "cookie",
)
_SCHEMES = "Bearer|Basic|Digest|Negotiate|Token|AWS4-HMAC-SHA256|AWS"
# name, then ':' or '=' (quotes of a dict repr or JSON around the name allowed),
# then a quoted value, or a bare word after an optional auth scheme ("Bearer abc").
_HEADER = re.compile(
    r"(?P<name>(?<![\w-])(?:" + "|".join(re.escape(name) for name in _HEADER_NAMES) + r"))"
    r"(?P<sep>[\"']?\s*[:=]\s*(?:b(?=[\"']))?)"
    r"(?P<value>\"[^\"\r\n]*\"|'[^'\r\n]*'|(?:(?:" + _SCHEMES + r")[ \t]+)?[^\s\"',;&}\])]+)",
    re.IGNORECASE,
)


def scrub_headers(text: str) -> str:
    """``text`` with the value of every credential-carrying header-looking fragment replaced by ``***``.

    For SDK and server error text quoted in a ``BackendError``: a server or
    proxy that echoes the request's headers echoes the token in them, and a
    token the library never saw (hvac's own ``~/.vault-token`` on an older
    path, a header a user set) cannot be masked by value.

    Example:
        >>> scrub_headers("rejected: X-Vault-Token: hvs.example-token-value (bad)")
        'rejected: X-Vault-Token: *** (bad)'
        >>> scrub_headers("{'X-Amz-Security-Token': b'FwoGZXIvYXdzEXAMPLE', 'Host': 'h'}")
        "{'X-Amz-Security-Token': b'***', 'Host': 'h'}"
    """
    if not text:
        return text

    def replace(match: re.Match[str]) -> str:
        value = match.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{match.group('name')}{match.group('sep')}{quote}{masking.REPLACEMENT}{quote}"

    return _HEADER.sub(replace, text)


def register(value: Any) -> None:
    """Register one credential (str, bytes or SecretValue; None and empty are ignored)."""
    if value:
        masking.register(value)


# -- AWS (botocore) ----------------------------------------------------------------------

# Credentials in the answers of the services that issue them (STS AssumeRole*,
# GetSessionToken, GetFederationToken; SSO GetRoleCredentials; SSO OIDC
# CreateToken; Cognito GetCredentialsForIdentity): XML or JSON fields.
_ISSUING_SERVICES = ("sts", "sso", "sso-oidc", "cognito-identity")
_ISSUED_FIELDS = (
    "AccessKeyId|SecretAccessKey|SessionToken|SecretKey|accessKeyId|secretAccessKey|sessionToken"
    "|accessToken|refreshToken|idToken"
)
_ISSUED_XML = re.compile(rb"<(" + _ISSUED_FIELDS.encode() + rb")>([^<]+)</\1>")
_ISSUED_JSON = re.compile(rb'"(' + _ISSUED_FIELDS.encode() + rb')"\s*:\s*"((?:[^"\\]|\\.)+)"')


def register_aws_credentials(credentials: Any) -> None:
    """Register a botocore ``Credentials`` object's access key, secret key and session token.

    For refreshable credentials (AssumeRole, SSO, container roles) this reads
    the current set, refreshing first if they are due, exactly as signing does.
    """
    if credentials is None:
        return
    frozen = credentials.get_frozen_credentials()
    for value in (frozen.access_key, frozen.secret_key, frozen.token):
        register(value)


def watch_botocore_session(session: Any) -> None:
    """Register every credential a botocore ``session`` (and each client made from it) uses.

    Handlers registered on a session are copied into every client it creates
    afterwards, including the STS/SSO clients its own credential providers
    make for ``AssumeRole`` and SSO profiles. ``before-sign`` runs before the
    request is signed and before botocore logs the signed request (its
    ``x-amz-security-token`` header and ``Authorization`` key id);
    ``before-parse`` runs before the response is parsed and logged at DEBUG.
    """
    session.register("before-sign", _before_sign)
    for service in _ISSUING_SERVICES:
        session.register(f"before-parse.{service}", _before_parse_issuer)
    register_container_authorization_token()


def register_container_authorization_token() -> None:
    """Register the token botocore's container provider sends to the credentials endpoint
    (ECS, EKS Pod Identity): ``AWS_CONTAINER_AUTHORIZATION_TOKEN``, or the contents of
    ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` (read as botocore reads it)."""
    import os

    register(os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") or None)
    path = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                register(handle.read().strip() or None)
        except OSError:  # botocore reports an unreadable file itself
            pass


def _before_sign(request_signer: Any = None, **_: Any) -> None:
    register_aws_credentials(getattr(request_signer, "_credentials", None))


def _before_parse_issuer(response_dict: Any = None, **_: Any) -> None:
    body = response_dict.get("body") if isinstance(response_dict, dict) else None
    if not isinstance(body, (bytes, bytearray)):
        return
    import html
    import json

    data = bytes(body)
    for match in _ISSUED_XML.finditer(data):
        register(html.unescape(match.group(2).decode("utf-8", "replace")))
    for match in _ISSUED_JSON.finditer(data):
        quoted = b'"' + match.group(2) + b'"'
        try:
            register(json.loads(quoted))  # "\/" and "\u002b" as the value really is
        except ValueError:
            register(match.group(2).decode("utf-8", "replace"))


# -- Google (google-auth) -------------------------------------------------------------------

_PEM_LINE_MIN = 16  # base64 lines of a PEM body; shorter (the last line) would mask too much


def register_service_account_key(info: Any) -> None:
    """Register a service-account key's private key: whole, and each line of its PEM body.

    The whole key is the form JSON and ``repr`` show; single lines are what a
    program printing the PEM file line by line (or a diff) shows.
    """
    if not isinstance(info, dict):
        return
    private_key = info.get("private_key")
    if not isinstance(private_key, str) or not private_key:
        return
    register(private_key)
    body = [line.strip() for line in private_key.splitlines() if line.strip() and "-----" not in line]
    register("".join(body))
    for line in body:
        if len(line) >= _PEM_LINE_MIN:
            register(line)


_WATCHED: dict[type, type] = {}
_WATCHED_LOCK = threading.Lock()
_WATCHED_MARK = "_authchain_registers_tokens"


def _watched_class(cls: type) -> type:
    """``cls`` with a ``refresh`` that registers the new token (made once per class).

    google-auth copies credentials with ``self.__class__(...)`` (``with_scopes``,
    ``with_always_use_jwt_access``, ``with_quota_project``), so the copies the
    client library makes keep registering. The subclass adds no slots (an
    object's class can only be swapped for one of the same layout) and pickles
    as the plain class, so nothing unpickling it needs this module.
    """

    plain: Any = cls

    def refresh(self: Any, request: Any) -> None:
        plain.refresh(self, request)  # the next class in the MRO
        register(getattr(self, "token", None))

    def __reduce_ex__(self: Any, protocol: Any) -> Any:
        reduced = plain.__reduce_ex__(self, protocol)
        if not isinstance(reduced, tuple):
            return reduced

        def swap(item: Any) -> Any:
            return cls if item is watched else item

        head, args, *rest = reduced
        args = tuple(swap(item) for item in args) if isinstance(args, tuple) else args
        if getattr(head, "__name__", "") == "__newobj__":
            # pickle insists that __newobj__'s class is the object's own: call __new__ directly.
            head = cls.__new__
        return (swap(head), args, *rest)

    namespace = {
        "__slots__": (),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "refresh": refresh,
        "__reduce_ex__": __reduce_ex__,
        _WATCHED_MARK: True,
    }
    watched = type(cls.__name__, (cls,), namespace)
    return watched


def register_adc_file() -> None:
    """Register the secrets of the file ``google.auth.default()`` reads, if it read one.

    That is ``GOOGLE_APPLICATION_CREDENTIALS``, else gcloud's
    ``application_default_credentials.json``: a service-account private key,
    or an authorized user's refresh token and client secret. The loaded
    credentials hold a private key only as a key object, so the text the file
    (and anything printing it) shows is registered from the file itself.
    """
    import json
    import os

    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not path:
        try:
            from google.auth import _cloud_sdk

            well_known: Any = _cloud_sdk.get_application_default_credentials_path  # untyped
            path = str(well_known())
        except Exception:  # an SDK without that helper: nothing more to register
            return
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return
    if not isinstance(info, dict):
        return
    register_service_account_key(info)
    for secret in ("refresh_token", "client_secret"):
        if isinstance(info.get(secret), str):
            register(info[secret])


def watch_google_credentials(credentials: Any, *, from_adc: bool = False) -> Any:
    """Register ``credentials``' secrets now and each access token it gets from now on.

    ``from_adc``: they came from ``google.auth.default()``; the file it read
    is registered too (:func:`register_adc_file`).

    Static secrets: a user credential's refresh token and client secret.
    Tokens: google-auth sets ``.token`` in ``refresh()``; the object's class is
    swapped for a subclass whose ``refresh`` registers the new token (the
    object itself is kept, so the SDK's ``isinstance`` checks still hold).
    Returns ``credentials``.
    """
    if from_adc:
        register_adc_file()
    if credentials is None:
        return credentials
    for secret in ("refresh_token", "client_secret", "token"):
        value = getattr(credentials, secret, None)
        if isinstance(value, (str, bytes)):
            register(value)
    # Impersonated (and other delegating) credentials refresh through an inner
    # credential whose tokens go over the wire too: watch it the same way.
    inner = getattr(credentials, "_source_credentials", None)
    if inner is not None and inner is not credentials:
        watch_google_credentials(inner)
    cls = type(credentials)
    if cls.__dict__.get(_WATCHED_MARK) or not callable(getattr(credentials, "refresh", None)):
        return credentials
    with _WATCHED_LOCK:
        watched = _WATCHED.get(cls)
        if watched is None:
            watched = _WATCHED[cls] = _watched_class(cls)
    # An unusual layout refuses the swap: the object stays as it is (its static secrets are registered).
    with contextlib.suppress(TypeError):
        credentials.__class__ = watched
    return credentials


# -- Prefect ---------------------------------------------------------------------------------------


def register_prefect_api_credentials() -> None:
    """Register the Prefect API key and auth string the Prefect client sends (``PREFECT_API_KEY``,
    ``PREFECT_API_AUTH_STRING``): Prefect's settings read them, never the chain."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    for secret in (api.key, api.auth_string):
        if secret is not None:
            register(secret.get_secret_value())


# authchain.testing's override layer while one is installed (set with the chain's
# hook, authchain._chain._set_testing_override): a leaf here, so a source can
# ask without importing the chain.
_override_layer: Any = None


def refuse_native_default(owner: str, name: str | None, sdk_default: str) -> None:
    """Raise ``ConfigError`` if a test's override is active (without passthrough).

    Called where a factory or source would let its SDK find an identity on its
    own (``sdk_default``: boto3's provider chain, hvac's ``VAULT_TOKEN`` /
    ``~/.vault-token``, ``google.auth.default()``): that reads the real
    environment, which the ``authchain_secrets`` fixture promises no test's
    lookup reaches. ``name``: the credential name that was not overridden.
    """
    layer = _override_layer
    if layer is None or layer.source.passthrough:
        return
    fix = (
        f"set authchain_secrets[{name!r}] (or the override_secrets mapping)"
        if name
        else "give it a `credentials` name and override that"
    )
    missing = f"credentials {name!r} are not overridden" if name else "no credentials are named"
    raise ConfigError(
        f"{owner}: {missing}, and {sdk_default} would read the real environment: {fix}, pass "
        f"credentials explicitly, or opt in with passthrough = True"
    )
