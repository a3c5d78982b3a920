"""``python -m xpnet.cli``: the ``xpnet`` command."""

import sys

from xpnet.cli import main

if __name__ == "__main__":
    sys.exit(main())
