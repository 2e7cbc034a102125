"""The source contract: ``authchain.sources.base`` is the stable path for writing a source.

The built-in backends live in ``authchain.backends.<name>``; the
``authchain.sources.<name>`` modules left here only re-export their source
classes, for installs whose entry-point metadata still names these paths."""
