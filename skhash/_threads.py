"""numba thread control that leaves torch's thread count as it was."""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import sys
import threading
from contextlib import contextmanager, nullcontext

__all__ = ["numba_threads", "resolve_n_jobs"]

# numba's workqueue threading layer (where neither OpenMP nor TBB is installed) aborts
# the process when two threads launch parallel kernels at once; a launch already uses
# every thread, so they take turns. Reentrant: blocks may nest in one thread.
_WORKQUEUE_LOCK = threading.RLock()


def _launch_lock(numba):
    """The lock parallel launches need, or a no-op where the layer is thread-safe."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the layer is chosen at the first
        return _WORKQUEUE_LOCK
    return _WORKQUEUE_LOCK if layer == "workqueue" else nullcontext()


def resolve_n_jobs(n_jobs):
    """Number of numba threads for ``n_jobs`` (None or -1: all, -2: all but one...)."""
    import numba

    available = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None or n_jobs == -1:
        return available
    if n_jobs < 0:
        return max(1, available + 1 + n_jobs)
    return min(n_jobs, available)


@contextmanager
def numba_threads(n_jobs):
    """Run numba parallel code on ``n_jobs`` threads (None or -1: all).

    numba's OpenMP threading layer sets the process-wide OpenMP thread count,
    which torch shares: a query would otherwise change how many threads (and so
    which floating-point reduction order) a later ``fit`` of an encoder uses.
    torch's count is restored on exit; torch is never imported here. Under
    numba's workqueue layer, which is not thread-safe, blocks in different
    threads run one at a time (OpenMP and TBB run them concurrently).

    Yields
    ------
    n_threads : int
        The number of threads numba uses inside the block.
    """
    import numba

    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    previous = numba.get_num_threads()
    n_threads = resolve_n_jobs(n_jobs)
    with _launch_lock(numba):
        try:
            # inside: a Ctrl-C raised as set_num_threads returns finds the count changed
            numba.set_num_threads(n_threads)
            yield n_threads
        finally:
            numba.set_num_threads(previous)
            if torch_threads is not None and torch.get_num_threads() != torch_threads:
                torch.set_num_threads(torch_threads)
