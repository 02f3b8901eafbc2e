"""The clusters of the command line, the tests and the benchmarks.

:func:`local_cluster` is the one set of LocalCluster settings (loopback only,
one thread per worker process, no dashboard); :func:`scheduler_client` turns a
``--scheduler`` value into a ``distributed.Client``.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

__all__ = ["local_cluster", "scheduler_client"]


def local_cluster(n_workers: int, silence_logs: int = logging.WARNING) -> Any:
    """A ``distributed.LocalCluster`` of `n_workers` processes, one thread each, on loopback.

    The one set of cluster settings of the command line (``--scheduler local:N``), the tests and
    the benchmarks.  The scheduler's HTTP server (it serves /health and /metrics even without a
    dashboard) listens on a free port of 127.0.0.1: distributed's default, 8787, is often taken
    by a notebook's cluster, and then it warns and moves (an error where warnings are errors).
    """
    from distributed import LocalCluster

    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address="127.0.0.1:0",
                        scheduler_kwargs={"dashboard": False}, silence_logs=silence_logs)


@contextlib.contextmanager
def scheduler_client(scheduler: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` for the command line's ``--scheduler`` value.

    * ``"local:N"``: start a LocalCluster of N worker processes (one thread
      each, listening on 127.0.0.1 only, no dashboard, logs below CRITICAL
      silenced: a task's error comes back to the caller as its exception, not
      also as a worker's log lines) and close it on exit;
    * any other string: the address of a running ``dask scheduler``
      (``tcp://host:8786`` or ``host:8786``); the client is closed on exit,
      the cluster is not;
    * None: yield the current default Client (or None: Dask's local threads).

    Examples
    --------
    >>> with scheduler_client("local:2") as client:                 # doctest: +SKIP
    ...     print(len(client.scheduler_info()["workers"]))
    2
    """
    if scheduler is None:
        try:
            from distributed import default_client
            client = default_client()
        except (ImportError, ValueError):
            client = None
        yield client
        return
    from distributed import Client

    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(f"scheduler must be 'local:N' or a scheduler address; got {scheduler!r}")
    if scheduler.startswith("local:"):
        count = scheduler[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler 'local:N' needs a positive worker count N; got {scheduler!r}")
        # Worker logs below CRITICAL silenced: a task's error comes back to
        # the caller as its exception, not also as a worker's log lines.
        with local_cluster(int(count), silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster) as client:
            yield client
        return
    with Client(scheduler) as client:
        yield client
