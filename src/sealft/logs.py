"""Logging for the command line. Library code only logs to the "sealft" logger, which
stays silent until an application (the `seal` command, or yours) configures it."""

from __future__ import annotations

import logging
import sys
import warnings

LEVELS = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test harness or a notebook may have
    swapped it since `configure`)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _Format(logging.Formatter):
    """Plain messages at INFO; other levels say which they are."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno == logging.INFO else f"{record.levelname.lower()}: {text}"


def configure(verbosity: str = "normal") -> None:
    """Send sealft's log (and Python warnings) to stderr at the given verbosity."""
    logger = logging.getLogger("sealft")
    for handler in list(logger.handlers):
        if getattr(handler, "_sealft_cli", False):
            logger.removeHandler(handler)
    handler = _Stderr(sys.stderr)
    handler._sealft_cli = True
    handler.setFormatter(_Format("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(LEVELS[verbosity])
    logger.propagate = False
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers = [handler]
    warnings_logger.setLevel(logging.WARNING)
    warnings_logger.propagate = False
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """One line per warning, without the source line Python would print under it."""
    logging.getLogger("py.warnings").warning(
        "%s (%s, %s:%d)", message, category.__name__, filename, lineno
    )
