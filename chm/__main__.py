"""``python -m chm``: the same program as the ``chm`` script (see :mod:`chm.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
