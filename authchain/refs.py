"""Secret references: ``SCHEME://LOCATION[?PARAMS][#KEY]`` naming one secret in one backend.

Parsing is syntax only: it never imports an SDK or touches the network, so
a reference to a backend whose extra is not installed still parses (resolving
it is what fails, with the extra named). This module knows the shape every
reference shares; each backend contributes its own grammar (a
:class:`ReferenceGrammar`: the expected form, its parameters and one small
validator) as its source class's ``reference_grammar``, found through the
``authchain.sources`` registration like the class itself. A malformed
reference is a :class:`~authchain.errors.ConfigError` that says what is
wrong and shows the expected form.

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

__all__ = [
    "GENERIC_GRAMMAR",
    "POSITIVE_INT",
    "VARIABLE_NAME",
    "LazyPattern",
    "ReferenceGrammar",
    "SecretRef",
    "any_location",
    "check_json_field",
    "is_reference",
    "require",
]


class LazyPattern:
    """A regular expression compiled when first used.

    The sixteen the built-in grammars use cost about 4 ms to compile, a
    quarter of the start-up budget of ``import authchain``, and most programs
    use two or three.
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

    def sub(self, replacement: Any, text: str) -> str:
        return self._get().sub(replacement, text)


_SCHEME_RE = LazyPattern(r"([a-z][a-z0-9-]*)://(.*)", re.DOTALL)
_FORBIDDEN_RE = LazyPattern(r"[\x00-\x20\x7f]")
_JSON_KEY = LazyPattern(r"[^#?&\x00-\x20\x7f]+")
VARIABLE_NAME = LazyPattern(r"[A-Za-z_][A-Za-z0-9_.-]*")
"""A name as an environment variable (or a ``credentials`` setting) writes it."""
POSITIVE_INT = LazyPattern(r"[1-9][0-9]{0,9}")
"""A version number as references write it (vault ``?version=``, SSM ``:N``)."""


@record
class ReferenceGrammar:
    """How one scheme's references look: what a backend contributes to parsing.

    ``validate(location, fragment, params)`` raises :class:`ConfigError`
    (through :func:`require`) naming the rule broken, never the text, and
    returns the location to keep. ``params``: the ``?NAME=VALUE`` names
    allowed (None: any, for a plugin that declares none). ``json_fragment``:
    False where ``#`` names something else than a JSON field (dotenv's
    variable).
    """

    form: str
    validate: Callable[[str, str | None, dict[str, str]], str]
    params: frozenset[str] | None = frozenset()
    json_fragment: bool = True


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
        spec = _grammar(scheme)
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
        if not _grammar(self.scheme).json_fragment:
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
        from authchain._process import default_chain

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
    from authchain._registry import is_registered

    return is_registered(match.group(1))


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


# Grammars found so far, by scheme: loading a source class is done once.
_grammars: dict[str, ReferenceGrammar] = {}


def _grammar(scheme: str) -> ReferenceGrammar:
    """The grammar the source type registered for ``scheme`` declares (generic if none)."""
    from authchain._registry import is_registered, load_source_class, production_types

    if not is_registered(scheme):  # asked each time: test sessions register and withdraw types
        known = sorted(production_types())
        hint = _suggestion(scheme, known)
        raise ConfigError(f"unknown reference scheme (not shown){hint}; known schemes: {', '.join(known)}")
    grammar = _grammars.get(scheme)
    if grammar is None:
        try:
            declared = getattr(load_source_class(scheme), "reference_grammar", None)
        except ConfigError:  # a plugin that cannot load: its references parse; resolving says why
            declared = None
        grammar = _grammars[scheme] = declared or GENERIC_GRAMMAR
    return grammar


def _split(scheme: str, rest: str, spec: ReferenceGrammar) -> tuple[str, str | None, dict[str, str]]:
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
        if spec.params is not None and key not in spec.params:
            allowed = ", ".join(sorted(spec.params)) or "none"
            raise ConfigError(
                f"reference {scheme}://... has an unknown parameter{_suggestion(key, spec.params)} "
                f"(allowed: {allowed}); expected {spec.form}"
            )
        if key in params:
            shown = "" if spec.params is None else f" {key!r}"  # a known name, safe to show
            raise ConfigError(f"reference {scheme}://... repeats the parameter{shown}")
        params[key] = value
    return rest, fragment if has_fragment else None, params


def _suggestion(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'vault'?)`` naming a known word close to ``word``, never ``word`` itself."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def require(condition: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``condition``: a grammar's one way to refuse."""
    if not condition:
        raise ConfigError(message)


def check_json_field(fragment: str | None) -> None:
    """Refuse a ``#KEY`` that cannot name a JSON field."""
    if fragment is not None:
        require(bool(_JSON_KEY.fullmatch(fragment)), "the #KEY is not a valid field name")


def any_location(location: str, fragment: str | None, params: dict[str, str]) -> str:
    """The validator of a grammar that only needs a location (and a JSON ``#KEY``, if any)."""
    require(bool(location), "the location is empty")
    check_json_field(fragment)
    return location


GENERIC_GRAMMAR = ReferenceGrammar("SCHEME://LOCATION[?NAME=VALUE][#KEY]", any_location, params=None)
"""For a source type that declares no ``reference_grammar`` (or whose plugin cannot load)."""


def __getattr__(name: str) -> object:
    # KNOWN_SCHEMES: every production source type (testing types aside), read
    # from the registry when asked, so it includes plugins and costs nothing at import.
    if name == "KNOWN_SCHEMES":
        from authchain._registry import production_types

        return frozenset(production_types())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
