"""``python -m fastlogit``: the same command line as the ``fastlogit`` script."""
import sys

from fastlogit.cli import main

if __name__ == "__main__":
    sys.exit(main())
