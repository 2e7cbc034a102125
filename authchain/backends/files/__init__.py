"""Mounted secret files: the ``files`` source and ``files://NAME`` references (``source.py``).

One directory, one file per secret: Docker and Compose ``/run/secrets``, a
Kubernetes Secret volume, systemd's ``$CREDENTIALS_DIRECTORY``. See
:mod:`authchain.backends` for what a backend package holds.
"""
