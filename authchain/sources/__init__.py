"""Built-in sources. Import a backend's module only when you use it: each one
imports its SDK lazily, and ``authchain.sources.base`` is the stable path for
writing your own."""
