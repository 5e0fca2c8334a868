"""``python -m dcstsf.cli``: the ``dcstsf`` command."""

import sys

from dcstsf.cli.main import main

sys.exit(main())
