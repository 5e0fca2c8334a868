"""The ``dcstsf`` command line: a thin layer over the Python API.

Subcommands: ``demo``, ``fuse``, ``evaluate``, ``simulate``, ``train``, ``methods``, ``sensors``. Run
``dcstsf COMMAND --help`` for each. Heavy modules (PyTorch, the engine) are imported inside the
commands, so ``dcstsf --help`` and ``--version`` answer at once.

Exit codes: 0 success, 1 system error such as a full disk or a denied permission, 2 bad input or usage
(message ``dcstsf: error: ...`` on stderr, no traceback; ``-v`` adds the traceback), 130 interrupted by
Ctrl-C, 143 stopped by SIGTERM.

Modules: :mod:`~dcstsf.cli.parser` (options), :mod:`~dcstsf.cli.arguments` (option types),
:mod:`~dcstsf.cli.commands` (one function per subcommand), :mod:`~dcstsf.cli.session` (logging and
signals for one command), :mod:`~dcstsf.cli.main` (the entry point).
"""

from dcstsf.cli.main import main
from dcstsf.cli.parser import build_parser

__all__ = ["build_parser", "main"]
