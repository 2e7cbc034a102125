"""Secret references: ``SCHEME://LOCATION[?PARAMS][#KEY]`` naming one secret in one backend.

Parsing is syntax only: it never imports a backend or touches the network, so
a reference to a backend whose extra is not installed still parses (resolving
it is what fails, with the extra named). Each scheme has one small validator;
a malformed reference is a :class:`~authchain.errors.ConfigError` that says
what is wrong and shows the expected form.

No message quotes the text it was given, nor any part of it: a reference is
where a value is sometimes pasted by mistake (``SecretRef.parse(password)``,
``P = "env://<the value>"``, ``vault://admin:PW@cache``). Messages name the
scheme (when it is a known one), the rule broken, the position of a bad
character, and the expected form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from authchain._records import record
from authchain._scrub import scrubbed
from authchain.errors import ConfigError

if TYPE_CHECKING:
    from authchain._chain import Chain
    from authchain.values import SecretValue

__all__ = ["SecretRef", "is_reference"]


class _Pattern:
    """A regular expression compiled when first used.

    The sixteen below cost about 4 ms to compile, a quarter of the start-up
    budget of ``import authchain``, and most programs use two or three.
    """

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source, self._flags = source, flags
        self._compiled: re.Pattern[str] | None = None

    def _get(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._source, self._flags)
        return self._compiled

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self._get().fullmatch(text)

    def match(self, text: str) -> re.Match[str] | None:
        return self._get().match(text)

    def search(self, text: str) -> re.Match[str] | None:
        return self._get().search(text)


_SCHEME_RE = _Pattern(r"([a-z][a-z0-9-]*)://(.*)", re.DOTALL)
_FORBIDDEN_RE = _Pattern(r"[\x00-\x20\x7f]")
_ENV_NAME = _Pattern(r"[A-Za-z_][A-Za-z0-9_.-]*")
_JSON_KEY = _Pattern(r"[^#?&\x00-\x20\x7f]+")
_VAULT_SEGMENT = _Pattern(r"[A-Za-z0-9_.@+=,-]+")
_AWS_SM_NAME = _Pattern(r"[A-Za-z0-9/_+=.@-]{1,2048}")
_AWS_SM_ARN = _Pattern(
    r"arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
)
_AWS_REGION = _Pattern(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_AWS_STAGE = _Pattern(r"[A-Za-z0-9_.-]{1,256}")
_AWS_VERSION_ID = _Pattern(r"[A-Za-z0-9-]{32,64}")
_SSM_NAME = _Pattern(r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_SSM_LABEL = _Pattern(r"[A-Za-z0-9_.-]{1,100}")
_GCP_PROJECT = _Pattern(r"[a-z0-9][a-z0-9-]{0,62}")
_GCP_ID = _Pattern(r"[A-Za-z0-9_-]{1,255}")
_PREFECT_BLOCK = _Pattern(r"[a-z0-9-]+")
_POSITIVE_INT = _Pattern(r"[1-9][0-9]{0,9}")


@record
class _Scheme:
    form: str
    validate: Callable[[str, str | None, dict[str, str]], str]
    params: frozenset[str] = frozenset()
    json_fragment: bool = True  # False where '#' names something else (dotenv)


@record
class SecretRef:
    """A parsed reference such as ``vault://secret/app/db#password``.

    ``location`` is the backend-specific part, ``fragment`` the text after
    ``#`` (a JSON field for most schemes, the variable for ``dotenv``) and
    ``params`` the query settings. References hold no secret, so they are
    safe to log, pickle and pass as Prefect parameters; the value is
    fetched where :meth:`resolve` is called.

    Example:
        >>> ref = SecretRef.parse("vault://secret/app/db#password?version=2")
        >>> ref.scheme, ref.location, ref.fragment, ref.param("version")
        ('vault', 'secret/app/db', 'password', '2')
        >>> str(ref)
        'vault://secret/app/db?version=2#password'
    """

    scheme: str
    location: str
    fragment: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    @scrubbed
    def parse(cls, text: str | SecretRef) -> SecretRef:
        """Parse ``text``; raise :class:`ConfigError` saying what is wrong.

        Raises:
            ConfigError: not a reference, unknown scheme, or malformed for its scheme.
        """
        if isinstance(text, SecretRef):
            return text
        if not isinstance(text, str):
            raise ConfigError(f"a reference must be a string, not {type(text).__name__}")
        match = _SCHEME_RE.fullmatch(text)
        if match is None:
            raise ConfigError(
                "the text is not a reference (not shown: it may be a value): expected SCHEME://..., "
                "for example env://DB_PASSWORD or vault://secret/app#password"
            )
        scheme, rest = match.groups()
        spec = _scheme_spec(scheme)
        bad = _FORBIDDEN_RE.search(rest)
        if bad:
            raise ConfigError(
                f"reference {scheme}://... contains a space or control character "
                f"at position {len(scheme) + 3 + bad.start()}; expected {spec.form}"
            )
        location, fragment, params = _split(scheme, rest, spec)
        try:
            location = spec.validate(location, fragment, params)
        except ConfigError as error:
            raise ConfigError(f"malformed {scheme}:// reference: {error}; expected {spec.form}") from None
        return cls(scheme, location, fragment, tuple(sorted(params.items())))

    @property
    def field(self) -> str | None:
        """The JSON field to pick from the secret (``#KEY``), if the scheme uses one."""
        spec = _SCHEMES.get(self.scheme) or _TESTING_SCHEMES.get(self.scheme)
        if spec is not None and not spec.json_fragment:
            return None
        return self.fragment

    def param(self, name: str, default: str | None = None) -> str | None:
        """The value of query parameter ``name``, or ``default``."""
        return dict(self.params).get(name, default)

    @property
    def param_map(self) -> Mapping[str, str]:
        return dict(self.params)

    def resolve(self, *, chain: Chain | None = None) -> SecretValue[Any]:
        """Fetch the value here, through ``chain`` or the default chain.

        This is why references, not values, should cross process boundaries:
        the worker that calls ``resolve`` uses its own config and credentials.
        """
        from authchain._ambient import default_chain

        return (chain or default_chain()).resolve(self)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Validate from text (``"vault://..."``), a field dict or a SecretRef; serialise as text.

        So a Prefect flow parameter typed ``SecretRef`` round-trips through the
        API as the reference itself, never a value.
        """
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            _ref_from_pydantic,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="always"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "format": "secret-reference"}

    def __str__(self) -> str:
        query = "&".join(f"{key}={value}" for key, value in self.params)
        text = f"{self.scheme}://{self.location}"
        if query:
            text += f"?{query}"
        if self.fragment is not None:
            text += f"#{self.fragment}"
        return text


def _ref_from_pydantic(value: Any) -> SecretRef:
    if isinstance(value, dict):
        try:
            value = str(SecretRef(**{**value, "params": tuple(map(tuple, value.get("params", ())))}))
        except TypeError:
            raise ValueError("expected a reference string or SecretRef fields") from None
    if not isinstance(value, (str, SecretRef)):
        raise ValueError("expected a reference string such as env://NAME")
    try:
        return SecretRef.parse(value)
    except ConfigError as error:
        raise ValueError(str(error)) from None


def is_reference(text: object) -> bool:
    """True if ``text`` starts with a secret-reference scheme authchain knows.

    ``postgres://…`` or ``https://…`` are not references, so ``authchain run``
    leaves such environment variables alone.
    """
    if isinstance(text, SecretRef):
        return True
    if not isinstance(text, str):
        return False
    match = _SCHEME_RE.match(text)
    if match is None:
        return False
    scheme = match.group(1)
    if scheme in _SCHEMES:
        return True
    from authchain._registry import registered_types

    return scheme in registered_types()


def parses_as_reference(value: object) -> bool:
    """A SecretRef, or text that parses as one: a malformed ``env://<value>`` is a
    value pasted where a reference goes, to be refused, never looked up."""
    if isinstance(value, SecretRef):
        return True
    if not is_reference(value):
        return False
    try:
        SecretRef.parse(value)  # type: ignore[arg-type]  # is_reference: a str
    except ConfigError:
        return False
    return True


def _scheme_spec(scheme: str) -> _Scheme:
    spec = _SCHEMES.get(scheme)
    if spec is not None:
        return spec
    from authchain._registry import registered_types

    if scheme in registered_types():
        return _TESTING_SCHEMES.get(scheme, _PLUGIN_SCHEME)
    known = ", ".join(sorted(_SCHEMES))
    raise ConfigError(
        f"unknown reference scheme (not shown){_suggestion(scheme, _SCHEMES)}; known schemes: {known}"
    )


def _split(scheme: str, rest: str, spec: _Scheme) -> tuple[str, str | None, dict[str, str]]:
    rest, has_fragment, fragment = rest.partition("#")
    query = ""
    if "?" in fragment:  # accept KEY?query as well as ?query#KEY
        fragment, _, query = fragment.partition("?")
    rest, _, rest_query = rest.partition("?")
    query = "&".join(part for part in (rest_query, query) if part)
    if has_fragment and not fragment:
        raise ConfigError(f"reference {scheme}://... has an empty #KEY; expected {spec.form}")
    params: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, has_eq, value = item.partition("=")
        if not has_eq or not key or not value:
            raise ConfigError(
                f"reference {scheme}://... has a malformed parameter (expected NAME=VALUE); "
                f"expected {spec.form}"
            )
        if spec is not _PLUGIN_SCHEME and key not in spec.params:
            allowed = ", ".join(sorted(spec.params)) or "none"
            raise ConfigError(
                f"reference {scheme}://... has an unknown parameter{_suggestion(key, spec.params)} "
                f"(allowed: {allowed}); expected {spec.form}"
            )
        if key in params:
            shown = "" if spec is _PLUGIN_SCHEME else f" {key!r}"  # a known name, safe to show
            raise ConfigError(f"reference {scheme}://... repeats the parameter{shown}")
        params[key] = value
    return rest, fragment if has_fragment else None, params


def _suggestion(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'vault'?)`` naming a known word close to ``word``, never ``word`` itself."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_json_field(fragment: str | None) -> None:
    if fragment is not None:
        _require(bool(_JSON_KEY.fullmatch(fragment)), "the #KEY is not a valid field name")


def _env(location: str, fragment: str | None, params: dict[str, str]) -> str:
    _require(
        bool(_ENV_NAME.fullmatch(location)), "the location is not a variable name ([A-Za-z_][A-Za-z0-9_.-]*)"
    )
    _check_json_field(fragment)
    return location


def _dotenv(location: str, fragment: str | None, params: dict[str, str]) -> str:
    _require(fragment is not None, "the variable to read is missing (#KEY)")
    _require(
        bool(_ENV_NAME.fullmatch(fragment or "")),
        "the #KEY is not a variable name ([A-Za-z_][A-Za-z0-9_.-]*)",
    )
    return location


def _keyring(location: str, fragment: str | None, params: dict[str, str]) -> str:
    service, slash, username = location.partition("/")
    _require(bool(service) and bool(slash) and bool(username), "needs SERVICE/USERNAME")
    _check_json_field(fragment)
    return location


def _vault(location: str, fragment: str | None, params: dict[str, str]) -> str:
    segments = location.split("/")
    _require(len(segments) >= 2, "needs a mount and a path (MOUNT/PATH)")
    for number, segment in enumerate(segments, start=1):
        _require(segment != "", "the path has an empty segment ('//' or a leading/trailing '/')")
        _require(segment not in {".", ".."}, "'.' and '..' are not allowed in a path")
        _require(
            bool(_VAULT_SEGMENT.fullmatch(segment)),
            f"path segment {number} has characters outside [A-Za-z0-9_.@+=,-]",
        )
    _require(params.get("kv", "2") in {"1", "2"}, "kv must be 1 or 2")
    if "version" in params:
        _require(bool(_POSITIVE_INT.fullmatch(params["version"])), "version must be a positive integer")
        _require(params.get("kv", "2") == "2", "version needs KV v2")
    _check_json_field(fragment)
    return location


def _aws_sm(location: str, fragment: str | None, params: dict[str, str]) -> str:
    arn = _AWS_SM_ARN.fullmatch(location)
    _require(
        bool(arn) or (bool(_AWS_SM_NAME.fullmatch(location)) and not location.startswith("arn:")),
        "the location is neither a secret name ([A-Za-z0-9/_+=.@-]) nor a Secrets Manager ARN",
    )
    if "stage" in params:
        _require(bool(_AWS_STAGE.fullmatch(params["stage"])), "stage is not a valid staging label")
    if "version_id" in params:
        _require(bool(_AWS_VERSION_ID.fullmatch(params["version_id"])), "version_id is not a version id")
    if "region" in params:
        _require(
            bool(_AWS_REGION.fullmatch(params["region"])),
            "the region is not a region name (such as eu-west-1)",
        )
    _check_json_field(fragment)
    return location


def _aws_ssm(location: str, fragment: str | None, params: dict[str, str]) -> str:
    name, colon, selector = location.rpartition(":") if ":" in location else (location, "", "")
    _require(bool(_SSM_NAME.fullmatch(name)), "the location is not a parameter name (/PATH/NAME)")
    if colon:
        _require(bool(_SSM_LABEL.fullmatch(selector)), "the :VERSION or :LABEL selector is empty or invalid")
        _require(
            "version" not in params and "label" not in params, "give the version either as :N or ?version=N"
        )
    if "version" in params:
        _require(bool(_POSITIVE_INT.fullmatch(params["version"])), "version must be a positive integer")
    _require(not ("version" in params and "label" in params), "give a version or a label, not both")
    if "label" in params:
        _require(bool(_SSM_LABEL.fullmatch(params["label"])), "label is not a valid label")
    if "region" in params:
        _require(
            bool(_AWS_REGION.fullmatch(params["region"])),
            "the region is not a region name (such as eu-west-1)",
        )
    _check_json_field(fragment)
    return location


def _gcp_sm(location: str, fragment: str | None, params: dict[str, str]) -> str:
    parts = location.split("/")
    if parts[0] == "projects":
        _require(len(parts) in {4, 6} and parts[2] == "secrets", "expected projects/P/secrets/S[/versions/V]")
        _require(bool(_GCP_PROJECT.fullmatch(parts[1])), "the project is not a project id ([a-z0-9-])")
        secret, rest = parts[3], parts[4:]
    else:
        _require(len(parts) in {1, 3}, "expected S or S/versions/V with a configured project")
        secret, rest = parts[0], parts[1:]
    _require(bool(_GCP_ID.fullmatch(secret)), "the secret is not a secret id ([A-Za-z0-9_-], 1-255)")
    if rest:
        _require(rest[0] == "versions" and bool(_GCP_ID.fullmatch(rest[1])), "expected .../versions/V")
    _check_json_field(fragment)
    return location


def _prefect(location: str, fragment: str | None, params: dict[str, str]) -> str:
    _require(bool(_PREFECT_BLOCK.fullmatch(location)), "the location is not a block name ([a-z0-9-])")
    _check_json_field(fragment)
    return location


def _generic(location: str, fragment: str | None, params: dict[str, str]) -> str:
    _require(bool(location), "the location is empty")
    _check_json_field(fragment)
    return location


_SCHEMES: dict[str, _Scheme] = {
    "env": _Scheme("env://NAME[#KEY]", _env),
    "dotenv": _Scheme("dotenv://[PATH]#KEY", _dotenv, json_fragment=False),
    "keyring": _Scheme("keyring://SERVICE/USERNAME[#KEY]", _keyring),
    "vault": _Scheme("vault://MOUNT/PATH[?kv=1|2][&version=N][#KEY]", _vault, frozenset({"kv", "version"})),
    "aws-sm": _Scheme(
        "aws-sm://SECRET_ID_OR_ARN[?stage=LABEL|version_id=ID][&region=REGION][#KEY]",
        _aws_sm,
        frozenset({"stage", "version_id", "region"}),
    ),
    "aws-ssm": _Scheme(
        "aws-ssm:///PATH/NAME[:VERSION][?version=N|label=L][&region=REGION][#KEY]",
        _aws_ssm,
        frozenset({"version", "label", "region"}),
    ),
    "gcp-sm": _Scheme("gcp-sm://projects/P/secrets/S/versions/V[#KEY] or gcp-sm://S[#KEY]", _gcp_sm),
    "prefect": _Scheme("prefect://BLOCK_NAME[#KEY]", _prefect),
}

# Schemes of testing tools: known only once test code registers the type
# (``authchain.testing.register_memory_source()``), never in production.
_TESTING_SCHEMES: dict[str, _Scheme] = {
    "memory": _Scheme("memory://NAME[#KEY]", _generic),
}

_PLUGIN_SCHEME = _Scheme("SCHEME://LOCATION[?NAME=VALUE][#KEY]", _generic)

KNOWN_SCHEMES: frozenset[str] = frozenset(_SCHEMES)
