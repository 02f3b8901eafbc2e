import sys

from fastlogit.cli import main

sys.exit(main())
