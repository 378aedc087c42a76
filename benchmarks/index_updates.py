"""Cost of ``HashIndex.add`` and ``remove`` against the index size, and of their id checks.

An index of ``N`` random unit rows (the timings do not depend on the content) with a
64-bit ``BinaryHashEncoder`` fitted on 2,000 rows and the default float16 rescoring.
Per size, best of ``--repeat`` calls each:

- ``add after: first`` / ``next``: ``add`` of ``m`` rows with new ids after the largest,
  the first into the fitted index (its rescoring vectors are copied into a buffer with a
  quarter more room) and the best of ``--repeat`` more right after (appended into that room);
- ``add below``: the best of ``--repeat`` adds of ``m`` rows whose ids are below the largest
  (``0 .. m-1``, removed first): new arrays, the O(n) path, side by side;
- ``remove m``: the best of removing the added batches, one at a time (new arrays each time);
- ``ids: search`` and ``ids: sets``: the id checks alone, as the index does them (binary
  search in the sorted ids, ``skhash._index._find_ids``) and as set operations
  (``np.intersect1d`` for ``add``, ``np.setdiff1d`` + ``np.isin`` for ``remove``, what
  the index did before), on the same arrays, side by side;
- ``1,000 queries``: one ``kneighbors`` batch, for scale.

Usage::

    python benchmarks/index_updates.py --sizes 100000 1000000
    python benchmarks/index_updates.py --quick
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
from functools import partial

import numpy as np
from _harness import (
    best_of,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    timed,
)
from sklearn.frozen import FrozenEstimator

from skhash import BinaryHashEncoder, HashIndex
from skhash._index import _find_ids


def unit_rows(rng, n, d):
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def set_checks(indexed, ids):
    """The set operations the id checks used before (add, then remove)."""
    np.intersect1d(ids, indexed)
    np.setdiff1d(ids, indexed)
    return ~np.isin(indexed, ids)


def search_checks(indexed, ids):
    """The binary-search checks of ``HashIndex.add`` and ``remove``."""
    positions, present = _find_ids(indexed, ids)
    keep = np.ones(indexed.shape[0], dtype=bool)
    keep[positions[present]] = False
    return keep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--rows", nargs="+", type=int, default=[10, 1000], help="m")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=3)
    args = parse_args(parser, {"sizes": [20_000], "rows": [10], "repeat": 1}, argv)
    print(machine_line())
    rng = np.random.default_rng(0)
    encoder = BinaryHashEncoder(n_bits=64, max_epochs=2, random_state=0)
    encoder.fit(unit_rows(rng, 2000, args.dims))
    queries = unit_rows(rng, 1000, args.dims)
    print_header(
        "items", "m", "add after: first, ms", "next, ms", "add below, ms", "below / next",
        "remove m, ms", "ids: search, ms", "ids: sets, ms", "sets / search", "1,000 queries, ms",
        left=2,
    )  # fmt: skip
    for n in args.sizes:
        index = HashIndex(encoder=FrozenEstimator(encoder)).fit(unit_rows(rng, n, args.dims))
        t_query, _ = best_of(partial(index.kneighbors, queries), args.repeat)
        for m in args.rows:
            new = unit_rows(rng, m, args.dims)
            first = int(index.ids_[-1]) + 1
            batches = [
                np.arange(first + i * m, first + (i + 1) * m) for i in range(args.repeat + 1)
            ]
            t_first, _ = timed(partial(index.add, new, ids=batches[0]))
            t_next = min(timed(partial(index.add, new, ids=b))[0] for b in batches[1:])
            t_remove = min(timed(partial(index.remove, b))[0] for b in batches[::-1])
            low = np.arange(m)
            t_below = []
            for _ in range(args.repeat):
                index.remove(low)
                t_below.append(timed(partial(index.add, new, ids=low))[0])
            t_below = min(t_below)
            new_ids = batches[0]  # absent again, as ids given to add
            indexed = index.ids_
            t_search, keep_a = best_of(partial(search_checks, indexed, new_ids), args.repeat)
            t_sets, keep_b = best_of(partial(set_checks, indexed, new_ids), args.repeat)
            assert np.array_equal(keep_a, keep_b)
            print_row(
                f"{n:,}", m, f"{1e3 * t_first:.1f}", f"{1e3 * t_next:.1f}", f"{1e3 * t_below:.1f}",
                f"{t_below / t_next:.0f}x", f"{1e3 * t_remove:.1f}", f"{1e3 * t_search:.2f}",
                f"{1e3 * t_sets:.1f}",
                f"{t_sets / t_search:.0f}x", f"{1e3 * t_query:.0f}",
            )  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
