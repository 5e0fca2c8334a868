"""How one command runs as a process: logging to stderr, SIGTERM as an interrupt, finalizer noise."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["Terminated", "cli_logging", "quiet_unraisable", "sigterm_as_interrupt"]

class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every command stops the same way: work kept, temporaries removed."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (``kill``, a batch system's time limit) into :class:`Terminated` for one command.

    Python's default for SIGTERM ends the process at once: no message, temporaries left behind. Signal
    handlers can only be set from the main thread; elsewhere (``main`` called from a worker thread) the
    default stays.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def quiet_unraisable() -> Iterator[None]:
    """Log exceptions raised in finalizers (``__del__``) at debug level instead of printing tracebacks.

    After a failed write, libraries such as h5py raise in finalizers of objects that can no longer be
    closed; the command's own error line says what happened and what to do, and ``-v`` shows the rest.
    """
    previous = sys.unraisablehook

    def log_it(unraisable: Any) -> None:
        logging.getLogger("dcstsf").debug(
            "exception ignored in %r: %r", getattr(unraisable, "object", None), unraisable.exc_value
        )

    sys.unraisablehook = log_it
    try:
        yield
    finally:
        sys.unraisablehook = previous


@contextlib.contextmanager
def cli_logging(verbose: int, quiet: int) -> Iterator[None]:
    """Log the ``dcstsf`` logger to stderr for one command: INFO by default, DEBUG with -v, WARNING with
    -q, ERROR with -qq. The logger's previous state is restored afterwards (``main`` may be called from
    Python, e.g. in tests, where the caller's logging setup must survive)."""
    level = logging.INFO
    if verbose:
        level = logging.DEBUG
    elif quiet == 1:
        level = logging.WARNING
    elif quiet >= 2:
        level = logging.ERROR
    logger = logging.getLogger("dcstsf")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "[dcstsf] %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
    from tqdm.contrib.logging import logging_redirect_tqdm

    shown: set[str] = set()

    def log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: Any = None, line: str | None = None) -> None:
        # A warning is news for the user, like a log line: where in the code it was raised is not (-v shows it).
        # A file read several times warns each time; the user needs to hear it once.
        text = str(message)
        if text not in shown:
            shown.add(text)
            logger.warning("warning: %s", text)

    try:
        with warnings.catch_warnings():
            if not verbose:
                warnings.showwarning = log_warning
                # Rasters on plain pixel grids (no CRS, e.g. ENVI files without map info) are supported;
                # GDAL's warning about each of them is noise on the command line (shown with -v).
                from rasterio.errors import NotGeoreferencedWarning

                warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
                # NumPy's notes on all-nodata bands or scenes: nodata is expected input, and when it leaves
                # too little to work with the error message says so.
                for note in ("Mean of empty slice", "All-NaN slice encountered", "Degrees of freedom <= 0"):
                    warnings.filterwarnings("ignore", message=note, category=RuntimeWarning)
            # Log lines go through tqdm while progress bars are shown, so they do not break the bars.
            with logging_redirect_tqdm(loggers=[logger]):
                yield
    finally:
        logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


