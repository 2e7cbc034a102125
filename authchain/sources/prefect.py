"""Old home of the prefect source, kept for installs whose entry-point metadata still names it.

The backend lives in :mod:`authchain.backends.prefect`.
"""

from authchain.backends.prefect.source import PrefectSource

__all__ = ["PrefectSource"]
