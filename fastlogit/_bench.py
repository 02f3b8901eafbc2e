"""Former home of ``fastlogit bench``; the harness is the package fastlogit.bench.
Kept so that the command line's ``from fastlogit import _bench`` still works."""
from fastlogit.bench import add_arguments, main, run

__all__ = ["add_arguments", "main", "run"]
