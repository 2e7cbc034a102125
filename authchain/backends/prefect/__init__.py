"""Prefect Secret blocks: the ``prefect`` source and ``prefect://BLOCK`` references
(``source.py``); it answers only inside a flow or task run by default.

See :mod:`authchain.backends` for what a backend package holds.
"""
