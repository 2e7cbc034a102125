"""``PrefectSecret``, declared (``secret_tasks`` builds the class: see :mod:`authchain.backends._task`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authchain.backends._task import SecretTaskDeclaration, TaskParameter

__all__ = ["TASKS"]


def _name(values: Mapping[str, Any], chain: object) -> str:
    # One path for the whole secret, key= and as_dict=: the name goes through
    # the source's own mapping (Prefect 1 variable, then the derived block), and
    # a field is picked from what that found. A prefect://block#key reference
    # would skip the Prefect 1 variable, which only a name maps to.
    return str(values["name"])


TASKS = (
    SecretTaskDeclaration(
        class_name="PrefectSecret",
        scheme="prefect",
        doc=(
            "A Prefect ``Secret`` block: a block name (``db-password``) or a secret name\n"
            "(``DB_PASSWORD`` → block ``db-password``; Prefect 1 ``PREFECT__CONTEXT__SECRETS__DB_PASSWORD``\n"
            "variables are honoured first).\n\n"
            "The whole secret, ``key=`` and ``as_dict=True`` all read the secret the same\n"
            "way (by name: the Prefect 1 variable first, then the block), so a flow\n"
            "migrated from Prefect 1 gets a field of its JSON secret exactly as it gets\n"
            "the whole of it."
        ),
        parameters=(
            TaskParameter("name", str, "the secret name (``DB_PASSWORD``) or block name (``db-password``)."),
            TaskParameter(
                "key", str, "a top-level field of a JSON secret to return instead of the whole secret."
            ),
        ),
        reference=_name,
        shared_docs=(
            ("default", "returned when the secret is missing, or has no field ``key``."),
            ("chain", "the chain to ask instead of a chain of Prefect's Secret blocks alone."),
            ("source_options", 'settings of a dedicated Prefect source (``{"block_prefix": "prod-"}``).'),
        ),
        own_source_by_default=True,
        key_of_found_value=True,
    ),
)
