"""
The entry point of the ``jobstamp`` command under its jobstamps 0.0.20 name.

``main(argv=None)`` takes the whole command line, ``argv[0]`` being the
program's name, writes through ``sys.stdout`` and ``sys.stderr``, and returns
the exit status.
"""

from __future__ import annotations

from ._cli import main

__all__ = ["main"]
