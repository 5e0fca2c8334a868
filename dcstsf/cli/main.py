"""``dcstsf``'s entry point: parse, run one command, map errors to exit codes and one-line messages."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Sequence

from dcstsf.cli.parser import PROG, build_parser
from dcstsf.cli.session import Terminated, cli_logging, quiet_unraisable, sigterm_as_interrupt

__all__ = ["main"]

def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dcstsf`` command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    verbose, quiet = int(getattr(args, "verbose", 0) or 0), int(getattr(args, "quiet", 0) or 0)
    if verbose and quiet:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: -v and -q cannot be combined", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help()
        return 0
    from dcstsf.errors import DcstsfInputError, MethodOutputError

    try:
        with cli_logging(verbose, quiet), sigterm_as_interrupt(), quiet_unraisable():
            return int(args.func(args) or 0)
    except DcstsfInputError as exc:
        _print_error(exc, verbose)
        return 2
    except MethodOutputError as exc:
        # A method that diverged: its message names the method and the tile; nothing wrong was written.
        _print_error(exc, verbose)
        return 1
    except ConnectionError as exc:
        # A cluster that failed (no worker left, ...): its message already says what to do.
        _print_error(exc, verbose)
        return 1
    except OSError as exc:
        # Disk full, permission denied, ...: the user fixes the system, not the inputs. Outputs are written
        # atomically, so nothing partial is left under the output name; a fuse run resumes its saved tiles.
        if exc.errno == errno.ENOSPC:
            fix = "Free space on that file system"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = "Fix the permissions or choose a writable place"
        else:
            fix = "Fix the cause"
        resume = " (finished tiles are kept and resumed)" if args.command == "fuse" else ""
        _print_error(exc, verbose, then=f". {fix}, then run the same command again{resume}")
        if argv is None and "h5py" in sys.modules:
            # After a failed write the HDF5 library can crash while Python shuts down (it retries closing
            # the file): end the process here, everything of ours being cleaned up already.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    except KeyboardInterrupt as exc:
        why = "by SIGTERM" if isinstance(exc, Terminated) else "by Ctrl-C"
        hint = "; the finished tiles are kept: run the same command again to resume" if args.command == "fuse" else ""
        print(f"{PROG}: interrupted {why}{hint}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


def _print_error(exc: BaseException, verbose: int, *, then: str = "") -> None:
    """``dcstsf: error: <message on one line><then>`` on stderr; with ``-v`` the traceback first."""
    if verbose:
        traceback.print_exc()
    msg = " ".join(str(exc).split())  # one line, whatever the message holds
    print(f"{PROG}: error: {msg}{then}", file=sys.stderr)
