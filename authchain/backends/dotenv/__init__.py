"""A ``.env`` file: the ``dotenv`` source and ``dotenv://PATH#KEY`` references (``source.py``).

See :mod:`authchain.backends` for what a backend package holds.
"""
