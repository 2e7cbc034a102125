"""Settings → sources: what ``Chain.from_settings`` builds a chain from.

The config layer (``authchain.config``) reads files and the environment into
:class:`~authchain.config.Settings` and builds nothing; this module turns
those settings into source instances (through the plugin registry) and
chain options; the chain (``authchain._chain``) puts them together. So the
dependencies run one way: config ← build ← chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from authchain._registry import load_source_class
from authchain.config import Settings, active_source_names, default_source_definitions, untrusted_endpoint
from authchain.sources.base import Source

__all__ = ["build_sources", "chain_options"]


def build_sources(settings: Settings, cwd: Path | None = None) -> list[Source]:
    """Instantiate the sources the settings describe, in chain order, each validated.

    A source whose endpoint an untrusted config file names gets no credentials
    at all (:meth:`~authchain.sources.base.Source.restrict_credentials`).
    """
    # Without configured sources the default .env is ./.env (the working
    # directory), not the config file's folder: DESIGN's default chain.
    definitions = (
        settings.sources
        if settings.sources is not None
        else default_source_definitions(cwd or settings.cwd, settings.environ)
    )
    sources = []
    for name in active_source_names(settings, definitions):
        table = definitions[name]
        cls = load_source_class(table["type"])
        origin = settings.origins.get(f"sources.{name}.type", settings.display)
        where = f"{origin}: {settings.key_prefix}sources.{name}"
        options = {key: value for key, value in table.items() if key != "type"}
        source = cls.from_settings(name, options, where=where, base_dir=settings.base_dir)
        refused = untrusted_endpoint(settings, f"sources.{name}", cls.endpoint_options)
        if refused:
            source.restrict_credentials(refused)
        sources.append(source)
    return sources


def chain_options(settings: Settings) -> dict[str, Any]:
    """The ``Chain`` keyword arguments the top-level settings give (cache, retries, pins)."""
    names = (
        "cache_ttl",
        "negative_ttl",
        "stale_if_error",
        "retries",
        "backoff",
        "backoff_max",
        "max_workers",
        "async_workers",
    )
    return {**{name: settings.value(name) for name in names}, "secrets": settings.secrets}
