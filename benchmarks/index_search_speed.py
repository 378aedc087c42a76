"""HashIndex search speed alone: QPS of ``kneighbors`` with a frozen 64-bit PCA-ITQ encoder.

Question: how fast is the two-stage search itself (Hamming candidates, then float16
rescoring) at ``n_candidates`` 10 and 100, with the encoder's cost kept out of the
comparison? Used to measure search-code changes side by side: run it once with this
checkout and once with another on ``PYTHONPATH``, alternating (issue 12).

    python benchmarks/index_search_speed.py
    PYTHONPATH=/path/to/other/checkout python benchmarks/index_search_speed.py
"""

import argparse
import time

from _harness import load_split, machine_line, print_command
from sklearn.frozen import FrozenEstimator

import skhash
from skhash import PCAITQ, HashIndex


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(machine_line())
    print(f"skhash from {skhash.__file__}")
    database, _, queries, _ = load_split()
    encoder = FrozenEstimator(PCAITQ(n_bits=64, random_state=0).fit(database))
    for n_candidates in (10, 100):
        index = HashIndex(encoder=encoder, n_candidates=n_candidates).fit(database)
        index.kneighbors(queries[:50])  # compile and warm up
        start = time.perf_counter()
        index.kneighbors(queries)
        seconds = time.perf_counter() - start
        print(f"n_candidates={n_candidates}: {len(queries) / seconds:,.0f} QPS")
    print_command()


if __name__ == "__main__":
    main()
