"""Old home of the dotenv source, kept for installs whose entry-point metadata still names it.

The backend lives in :mod:`authchain.backends.dotenv`.
"""

from authchain.backends.dotenv.source import DotenvSource

__all__ = ["DotenvSource"]
