"""Progress on long work: a tqdm bar on a terminal, plain periodic log lines elsewhere.

A log file or a CI console is not a terminal: there a redrawn bar leaves hundreds of
carriage-return frames, so progress is reported as one INFO line every `interval` seconds
and one when the work ends.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time
from collections.abc import Iterable

from tqdm.auto import tqdm

log = logging.getLogger("sealft.progress")
INTERVAL = 30.0


class PlainProgress:
    """The part of tqdm's interface sealft uses, writing plain lines to the log."""

    def __init__(self, iterable=None, *, total=None, desc="", interval=INTERVAL):
        self.iterable, self.desc, self.interval = iterable, desc, interval
        self.total = total if total is not None else _len(iterable)
        self.n, self.postfix = 0, ""
        self.start = self.last = time.monotonic()
        self.closed = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line()

    def set_postfix(self, **values) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self.start
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        left = ""
        if self.total and 0 < self.n < self.total:
            left = f", ~{elapsed * (self.total - self.n) / self.n:.0f} s left"
        log.info("%s: %s (%.0f s%s)%s", self.desc, done, elapsed, left, _sep(self.postfix))


def _len(iterable) -> int | None:
    try:
        return len(iterable)
    except TypeError:
        return None


def _sep(text: str) -> str:
    return f" {text}" if text else ""


def is_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    enabled: bool = True,
    leave: bool = False,
):
    """tqdm on a terminal, `PlainProgress` elsewhere, nothing when not `enabled`."""
    if enabled and not is_terminal():
        return PlainProgress(iterable, total=total, desc=desc)
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=leave)


@contextlib.contextmanager
def without_bars(*modules):
    """Silence the tqdm bars that other libraries draw with a module-level `tqdm` and no
    switch of their own (data-selection's passes, transformers' GGUF de-quantisation)."""
    saved = [m.tqdm for m in modules]
    for m, bar in zip(modules, saved, strict=True):
        m.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        for m, bar in zip(modules, saved, strict=True):
            m.tqdm = bar
