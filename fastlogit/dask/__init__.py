"""fastlogit on Dask: scoring and training when X does not fit one machine.

Modules: :mod:`~fastlogit.dask.arrays` (lazy sigmoid, forward_pass, predict,
score_dataframe), :mod:`~fastlogit.dask.reductions` (cost_and_gradients on the kernel's own
reduction chunks and combine), :mod:`~fastlogit.dask.training` (fit: Newton,
one round of tasks and one tree reduction per iteration) and
:mod:`~fastlogit.dask.parts` (folders of Parquet, .npy or CSV/text parts, read lazily
and trained on with the rules of ``fastlogit train``; which files are parts:
:mod:`~fastlogit.dask.part_folder`), :mod:`~fastlogit.dask.part_scoring`
(such folders scored with the engine of ``fastlogit score``, the output folder
replaced all or nothing) and :mod:`~fastlogit.dask.cluster` (``--scheduler``).

Install with ``pip install "fastlogit[dask]"``.  fastlogit's compiled kernels run
inside Dask tasks, one block of rows at a time; Dask does the scheduling, the
data movement and the fault tolerance.  Nothing here moves X: every task reads
one row block (and the matching block of Y / sample weights) and returns
either that block's scores or a few numbers (its partial sums).

Conventions are those of :mod:`fastlogit`: X (m, n) one example per row, a dask
array chunked along rows only; Y (1, m) or (m,); W (n, 1); b scalar.

Reproducibility of :func:`cost_and_gradients`
---------------------------------------------
Each row block's *unnormalised* sums (loss, X^T r, sum r, weight) come from
the compiled fused kernel, exactly as the in-memory call computes them.  They
are added with the kernel's own compensated (Neumaier) summation, in block
order, in fixed groups of 64 consecutive blocks, then the groups' sums in
groups of 64, and so on (:func:`combine_in_groups`; up to 64 blocks, one
combine of all of them).  No task receives more than 64 blocks' sums.  So:

1. The result does not depend on the number of workers, the order in which
   tasks finish, retries after a lost worker, ``split_every``, or
   ``n_threads``: it is a function of the row chunks (and the values) only.
   It equals, bit for bit, :func:`in_memory_cost_and_gradients` on a NumPy X
   with the same row chunks.
2. It equals ``fastlogit.cost_and_gradients`` on the whole X in memory **bit
   for bit** when (a) the row chunks are :func:`kernel_row_chunks` ``(m, n,
   dtype)`` (the in-memory kernel's own reduction chunks), (b) each of those
   chunks holds at most 64 kernel blocks, i.e. ``m <= 4096 *
   rows_per_block(n)`` (2 097 152 rows for n <= 16 float64 features; beyond
   that the kernel re-chunks a block and the summation trees differ), (c) the
   in-memory X and every block are C-contiguous (C and F layouts accumulate
   the dot products in different orders), and (d) the sample weights are
   None, or their block sums are exact (integers, for example): the in-memory
   call normalises by ``numpy.sum`` of all weights, this one by the
   compensated sum of the block sums.  These conditions are sufficient, not
   necessary: outside (b) the two compensated summation trees usually still
   round to the same bits (m = 3 000 000, n = 3 did), but nothing guarantees it.
3. Otherwise the two differ by rounding in the summation only:
   ``|dask - memory| <= ~4 eps sum_blocks |partial|`` per component (eps =
   2.2e-16); for the cost, whose partials are all positive, that is a few
   units in the last place (relative 1e-15 or better).  A gradient component
   that cancels to nearly zero (near the optimum) carries the same *absolute*
   error, hence a larger relative one, as in the in-memory call itself.
"""

from fastlogit.dask.arrays import (
    ColumnChunksWarning,
    forward_pass,
    predict,
    score_dataframe,
    sigmoid,
)
from fastlogit.dask.cluster import local_cluster, scheduler_client
from fastlogit.dask.part_scoring import score_parts
from fastlogit.dask.parts import Parts, fit_parts, read_parts
from fastlogit.dask.reductions import (
    COMBINE_GROUP,
    combine_in_groups,
    combine_partials,
    cost_and_gradients,
    in_memory_cost_and_gradients,
    kernel_row_chunks,
)
from fastlogit.dask.training import fit

__all__ = [
    "ColumnChunksWarning",
    "sigmoid",
    "forward_pass",
    "predict",
    "score_dataframe",
    "cost_and_gradients",
    "in_memory_cost_and_gradients",
    "kernel_row_chunks",
    "combine_partials",
    "combine_in_groups",
    "COMBINE_GROUP",
    "fit",
    "Parts",
    "read_parts",
    "score_parts",
    "fit_parts",
    "scheduler_client",
    "local_cluster",
]
