"""authchain: "give me secret X" the same way on a laptop, in CI and in production.

>>> import authchain
>>> authchain.resolve("AUTHCHAIN_DOCTEST_ABSENT", default="fallback")
'fallback'

The chain, its sources and their order come from ``authchain.toml``; see
docs/configuration.md. Importing this package loads no cloud SDK.
"""

from authchain._api import aexplain, aresolve, aresolve_many, explain, resolve, resolve_many
from authchain._chain import Chain
from authchain._version import __version__
from authchain.errors import (
    AuthChainError,
    BackendError,
    ConfigError,
    SecretNotFound,
    SourceUnavailableError,
)
from authchain.masking import install_log_masking
from authchain.refs import SecretRef
from authchain.values import Explanation, SecretValue

__all__ = [
    "AuthChainError",
    "BackendError",
    "Chain",
    "ConfigError",
    "Explanation",
    "SecretNotFound",
    "SecretRef",
    "SecretValue",
    "SourceUnavailableError",
    "__version__",
    "aexplain",
    "aresolve",
    "aresolve_many",
    "explain",
    "install_log_masking",
    "resolve",
    "resolve_many",
]
