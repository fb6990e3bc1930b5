"""
Debug logging and warnings, without importing :mod:`logging` on every run.

Hits and misses go to the ``logging`` logger named ``"jobstamps"``. Importing
:mod:`logging` costs 8.6 ms or more (fresh processes), where a cached
``jobstamp`` run has a budget of 1.5x an empty console script of about 21 ms
(scenario 7 of ``benchmarks/run.py``), so a record is only built when someone
can see it: ``JOBSTAMPS_DEBUG`` is set, or the program already uses
:mod:`logging` and enabled DEBUG for this logger. This module knows what to
say, never why: it imports only :mod:`._config` and the exceptions.
"""

from __future__ import annotations

import sys
import warnings

from . import _config
from .exceptions import JobstampsWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

LOGGER_NAME = "jobstamps"


_logger: logging.Logger | None = None
_DEBUG_LEVEL = 10  # logging.DEBUG


def debug(message: str, *args: object) -> None:
    logger = _enabled()
    if logger is not None:
        logger.debug(message, *args)


def enabled() -> bool:
    """
    Whether a debug line would be seen now: worth building its arguments.
    """
    return _enabled() is not None


def _enabled() -> logging.Logger | None:
    global _logger
    logger = _logger
    if logger is None:
        if "logging" not in sys.modules and not _config.debug():
            return None
        import logging

        logger = _logger = logging.getLogger(LOGGER_NAME)
    if _config.debug():
        _show_on_stderr(logger)
    return logger if logger.isEnabledFor(_DEBUG_LEVEL) else None


def short_call(function: str, args: tuple[object, ...], kwargs: object) -> str:
    """
    A call of *function* as debug lines name it: ``module:name(1, 'a', b=2)``
    with long arguments shortened, so that calls with other arguments can be
    told apart.
    """
    import reprlib

    shorten = reprlib.Repr()
    shorten.maxstring = shorten.maxother = 40
    shorten.maxlevel = 3
    parts = [shorten.repr(arg) for arg in args]
    parts.extend(
        f"{name}={shorten.repr(value)}"
        for name, value in dict(kwargs).items()  # type: ignore[call-overload]
    )
    return f"{function}({', '.join(parts)})"


_PACKAGE = __name__.rpartition(".")[0]  # "jobstamps"


def caller_stacklevel() -> int:
    """
    The ``stacklevel`` that makes ``warnings.warn``, called by the caller of
    this function, point at the first frame outside the jobstamps package:
    the user's line that called into it, however deep the call went.
    """
    frame = sys._getframe(1)
    level = 1
    prefix = _PACKAGE + "."
    while frame.f_back is not None:
        name = frame.f_globals.get("__name__", "")
        if name != _PACKAGE and not name.startswith(prefix):
            break
        frame = frame.f_back
        level += 1
    return level


def warn(message: str) -> None:
    """
    Warn with a :class:`JobstampsWarning` that names the user's line (the
    first frame outside jobstamps), and log it too.
    """
    warnings.warn(message, JobstampsWarning, stacklevel=caller_stacklevel())
    if "logging" in sys.modules:
        import logging

        logger = logging.getLogger(LOGGER_NAME)
        # Without a handler, logging's last resort would print the warning a
        # second time.
        if logger.hasHandlers():
            logger.warning(message)


def _show_on_stderr(logger: logging.Logger) -> None:
    import logging

    if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
        logger.setLevel(logging.DEBUG)
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("jobstamps: %(message)s"))
        logger.addHandler(handler)
