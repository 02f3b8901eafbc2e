"""``fastlogit bench``: fastlogit side by side with the NumPy reference and the peers.

For every (kernel, size, dtype, threads) it times the textbook NumPy reference,
fastlogit and whichever peers are installed (SciPy, scikit-learn, numexpr,
PyTorch), interleaving the implementations round by round so that a noisy,
shared machine slows them alike, and prints the median time and its spread,
the throughput, the speed-up over the reference, the percentage of the
memory-bandwidth floor (the time to just read the inputs and write the
outputs once, measured on the spot), the peak extra memory of one call and
whether the result matches the reference.  ``--load K ...`` instead measures
the default thread count against one thread while K busy processes compete
for the cores.

Layout: ``problems`` (cases and their inputs), ``registry`` (kernel ->
implementations, peers imported lazily), ``timing`` (the one timing helper,
memory, bandwidth floor), ``cases`` (one case into table rows), ``load``
(busy processes, loaded-machine table), ``report`` (table, JSON, plot),
``command`` (options, checks made before the run, the run).  The
pytest-benchmark suite in ``benchmarks/`` uses the same cases.
"""
from fastlogit.bench.command import add_arguments, check_args, main, run

__all__ = ["add_arguments", "check_args", "main", "run"]
