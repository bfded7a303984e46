r"""``python -m sda_lite``: the command line of :mod:`sda_lite.cli`."""

import sys

from sda_lite.cli import main

if __name__ == "__main__":
    sys.exit(main())
