"""``KeyringSecret``, declared (``secret_tasks`` builds the class: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authchain.backends._task import KEY, SecretTaskDeclaration, TaskParameter, reference
from authchain.refs import SecretRef

if TYPE_CHECKING:
    from authchain._chain import Chain

__all__ = ["TASKS"]


def _reference(values: Mapping[str, Any], chain: Chain) -> SecretRef:
    service = values["service"] or _default_service(chain)
    return reference("keyring", f"{service}/{values['username']}", values["key"])


def _default_service(chain: Chain) -> str:
    """The service of the keyring source this run asks, as the source itself picks it
    for a bare name: so the entry the chain finds as ``DB_PASSWORD`` is the one
    ``KeyringSecret("DB_PASSWORD")`` reads, without naming the service twice."""
    from authchain.backends.keyring.source import DEFAULT_SERVICE, KeyringSource

    for source in chain.sources:
        if isinstance(source, KeyringSource):
            return source.service
    return DEFAULT_SERVICE


TASKS = (
    SecretTaskDeclaration(
        class_name="KeyringSecret",
        scheme="keyring",
        doc="An OS keyring entry: ``keyring://SERVICE/USERNAME``.",
        parameters=(
            TaskParameter(
                "username",
                str,
                "the entry's user name (authchain stores a secret under its name: ``DB_PASSWORD``).",
            ),
            TaskParameter(
                "service",
                str,
                "the keyring service (default: the ``service`` of the chain's keyring source, which "
                "from a config file defaults to the project name, else ``authchain``; with no "
                "keyring source in the chain, ``authchain``).",
            ),
            KEY,
        ),
        reference=_reference,
    ),
)
