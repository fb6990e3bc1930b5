"""
``python -m jobstamps``: the ``jobstamp`` command, :func:`._cli.main`.
"""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
