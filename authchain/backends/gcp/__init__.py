"""GCP Secret Manager: the ``gcp-sm`` source and references, and the
google-auth and Secret Manager client factories.

One backend, one package:

- ``source.py``: the source class(es), their ``Option`` settings and their
  reference grammar (``reference_grammar``);
- ``client.py``: the client factory, its ``[clients.gcp]`` options and its
  ``explain_gcp``;
- its Secret task lives in ``secret_tasks`` (that package depends on this one).

Registered through the ``authchain.sources`` entry points like any plugin.
Nothing is imported here: loading a source type imports only its module, and
that module imports its SDK when first used.
"""
