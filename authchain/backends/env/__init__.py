"""Environment variables: the ``env`` source and ``env://NAME`` references (``source.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""
