"""Codes from labels: mAP@100 of ``fit(X, y)`` against float-cosine kNN, per corpus and label.

Protocol (as ``quality.py``): a seeded split into 2,000 held-out queries and the
database; every encoder is fitted on the database only. Relevance = same label;
mAP@100 of the Hamming ranking (ties by index), normalised by the relevant items
retrieved (``_harness.map_at``); a query with no relevant item in the database
scores 0 for every method, so the **ceiling** column gives the share of queries
that have at least one. Labels:

- ``fortunes:file``: the fortune file (42 weak topic labels);
- ``manpages:section``: the man section (8 coarse labels);
- ``manpages:page``: the page (7,553 pages, most with a handful of paragraphs).

For each corpus, label and seed: skhash ``fit(X, y)``, skhash ``fit(X)`` (the
same model without labels), PCA-ITQ and float-cosine kNN; ``--params`` adds
``BinaryHashEncoder`` settings (JSON) to both skhash rows, for trying variants.

Usage::

    python benchmarks/supervised.py --bits 64 --seeds 0 1
    python benchmarks/supervised.py --labels manpages:page --params '{"centroid_weight": 1}'
    python benchmarks/supervised.py --quick        # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json

import numpy as np
from _harness import (
    float_ranking,
    hamming_ranking,
    load_split,
    machine_line,
    map_at,
    parse_args,
    print_command,
    print_header,
    print_row,
    timed,
)

LABELS = {"fortunes:file": ("fortunes", "y"), "manpages:section": ("manpages", "section")}
LABELS["manpages:page"] = ("manpages", "y")


def load_labelled(name, n_database=None):
    """(X_db, y_db, X_q, y_q) of ``corpus:label`` (:func:`_harness.load_split`)."""
    corpus, key = LABELS[name]
    return load_split(corpus=corpus, label=key, n_database=n_database)


def scores(split, bits, seed, params, args):
    """mAP@100 of skhash fit(X, y), skhash fit(X) (text, "" if skipped), PCA-ITQ; fit seconds."""
    from skhash import PCAITQ, BinaryHashEncoder

    Xdb, ydb, Xq, yq = split

    def score(est, y=None):
        fit_s, _ = timed(lambda: est.fit(Xdb, y))
        return map_at(yq, ydb, hamming_ranking(est.transform(Xdb), est.transform(Xq))), fit_s

    sup, fit_s = score(BinaryHashEncoder(n_bits=bits, random_state=seed, **params), ydb)
    uns = ""
    if not args.no_unsupervised:
        uns = f"{score(BinaryHashEncoder(n_bits=bits, random_state=seed, **params))[0]:.4f}"
    itq, _ = score(PCAITQ(n_bits=bits, random_state=seed))
    return sup, uns, itq, fit_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", nargs="+", choices=list(LABELS), default=list(LABELS))
    parser.add_argument("--bits", type=int, nargs="+", default=[64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--params", default="{}", help="BinaryHashEncoder settings (JSON)")
    parser.add_argument("--no-unsupervised", action="store_true", help="skip skhash fit(X)")
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    quick = dict(bits=[8], seeds=[0], n_database=2000, params='{"max_epochs": 2}')
    args = parse_args(parser, quick, argv)
    params = json.loads(args.params)

    print(machine_line(), flush=True)
    print(f"skhash settings: {params or 'default'}\n")
    print_header(
        "labels", "bits", "seed", "ceiling", "float kNN", "skhash fit(X, y)", "/ float",
        "skhash fit(X)", "PCA-ITQ", "fit(X, y) s",
    )  # fmt: skip
    for name in args.labels:
        Xdb, ydb, Xq, yq = load_labelled(name, n_database=args.n_database)
        ceiling = float(np.isin(yq, ydb).mean())
        float_map = map_at(yq, ydb, float_ranking(Xdb, Xq, 100))
        for bits in args.bits:
            for seed in args.seeds:
                sup, uns, itq, fit_s = scores((Xdb, ydb, Xq, yq), bits, seed, params, args)
                print_row(
                    name, bits, seed, f"{ceiling:.3f}", f"{float_map:.4f}", f"{sup:.4f}",
                    f"{sup / float_map:.3f}", uns, f"{itq:.4f}", f"{fit_s:.0f}",
                )  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
