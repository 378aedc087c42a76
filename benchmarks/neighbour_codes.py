"""Codes smoothed towards their neighbours' codes, and two half-length models side by side.

A screen of two levers the library does not take (yet, for the first:
``docs/nested_codes.md``, section "Codes from their neighbours' codes: a lead; two
half-length models side by side"), aimed at the held-out gap of long codes (trained rows
find 0.93 of their neighbours at 128 bits on fortunes, held-out queries 0.82).
``nested.py``'s split and protocol (recall10@100 of 2,000 held-out queries, 400 of
digits, among the database rows, ground truth by cosine); per seed, in one run:

- one default ``BinaryHashEncoder(n_bits=--bits, nested_bits=--prefixes, n_anchors=0)`` fit
  (``--prefixes`` with no value: ``nested_bits=None``; no anchors: the smoothing below is
  computed here); its pre-sign outputs ``f = encoder.embed(X)`` give the rule's codes
  ``f > 0``;
- **smoothing**: codes ``f(x) + lam * mean(a_j)`` over the ``k`` anchors ``j`` nearest ``x``
  by cosine, where anchor ``j`` is a k-means centre (``--anchors`` of them, on the
  unit-length database rows) and ``a_j`` the mean of ``f`` over its rows; ``--anchors 0``
  takes the database rows themselves as anchors (``a_j = f(row j)``, the row itself
  included for a database row). "both": database and queries encoded so; "queries only":
  the database keeps the rule's codes;
- **side by side** (``--pair``): two default ``BinaryHashEncoder(n_bits=--bits // 2,
  nested_bits=--prefixes[:1])`` fits (seeds ``seed`` and ``seed + 1``); the full code is
  the two codes concatenated, the prefixes the first model's;
- ``--n-anchors N``: ``BinaryHashEncoder(n_anchors=N)`` fitted with the same seed (the
  same network as the rule's) for each ``N``, ``k`` (``anchor_neighbors``) and ``lam``
  (``anchor_weight``): the library's smoothed codes, database and queries encoded by it,
  and the time to encode the queries with and without its anchors;
- PCA-ITQ at each length (fitted on the same rows as the encoders).

``--fit-rows N`` fits the encoders, the anchors and PCA-ITQ on the first ``N`` database rows
only: the other database rows are as new to the models as the queries are (anchors then come
from those ``N`` rows alone).

Usage::

    python benchmarks/neighbour_codes.py --corpus fortunes --seeds 0 --pair
    python benchmarks/neighbour_codes.py --quick      # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse

import numpy as np
from _harness import (
    best_of,
    float_ranking,
    hamming_ranking,
    load_split,
    machine_line,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
    timed,
)


def unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def nearest(Xn, anchors, k, chunk=2000):
    """Indices (unordered) of the ``k`` anchors of largest cosine to each unit row of ``Xn``."""
    out = np.empty((len(Xn), k), dtype=np.int64)
    for start in range(0, len(Xn), chunk):
        sim = Xn[start : start + chunk] @ anchors.T
        out[start : start + chunk] = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    return out


def anchor_table(Xdb_unit, f_db, n_anchors, seed):
    """``(anchors, values)``: k-means centres and the mean pre-sign output of their rows."""
    if n_anchors == 0:  # the database rows themselves
        return Xdb_unit, f_db
    from sklearn.cluster import KMeans

    km = KMeans(n_anchors, n_init=1, max_iter=50, random_state=seed).fit(Xdb_unit)
    values = np.zeros((n_anchors, f_db.shape[1]), dtype=np.float32)
    np.add.at(values, km.labels_, f_db)
    values /= np.maximum(np.bincount(km.labels_, minlength=n_anchors), 1)[:, None]
    return unit(km.cluster_centers_.astype(np.float32)), values


def encode_seconds(model, X):
    """Seconds to encode ``X`` by the numpy forward pass without and with the anchors."""
    from skhash._inference import ANCHOR_KEYS, forward

    state = model.module_state_
    network = {k: v for k, v in state.items() if k not in ANCHOR_KEYS}
    X = np.ascontiguousarray(X, dtype=np.float32)
    return best_of(lambda: forward(network, X))[0], best_of(lambda: forward(state, X))[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="fortunes")
    parser.add_argument("--bits", type=int, default=128)
    parser.add_argument("--prefixes", type=int, nargs="*", default=[32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--anchors", type=int, nargs="*", default=[0, 1024, 4096])
    parser.add_argument("--ks", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--lams", type=float, nargs="+", default=[0.5, 1.0, 3.0])
    parser.add_argument("--pair", action="store_true", help="also two half-length models")
    parser.add_argument(
        "--no-rule",
        action="store_true",
        help="skip the rule's fit (and so the smoothing of its outputs: --anchors is ignored)",
    )
    parser.add_argument(
        "--n-anchors",
        type=int,
        nargs="*",
        default=[],
        help="also fit BinaryHashEncoder(n_anchors=N, anchor_neighbors=k, anchor_weight=lam) "
        "for each N, k and lam: the library's smoothed codes",
    )
    parser.add_argument(
        "--fit-rows",
        type=int,
        default=None,
        help="fit the encoders and the anchors on the first rows of the database only",
    )
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-steps", type=int, default=None, help="encoder max_steps")
    quick = dict(bits=32, prefixes=[8, 16], n_database=2000, max_steps=40, anchors=[0, 64])
    args = parse_args(parser, quick, argv)
    params = {} if args.max_steps is None else {"max_steps": args.max_steps}

    from skhash import PCAITQ, BinaryHashEncoder

    print(machine_line(), flush=True)
    Xdb, _, Xq, _ = load_split(None, 0, args.n_database, corpus=args.corpus)
    true = float_ranking(Xdb, Xq, 10)
    db_unit, q_unit = unit(Xdb), unit(Xq)
    fit_rows = len(Xdb) if args.fit_rows is None else args.fit_rows
    Xfit = Xdb[:fit_rows]
    lengths = [*args.prefixes, args.bits]

    def cells(f_db, f_q):
        ranked = (hamming_ranking(f_db[:, :b] > 0, f_q[:, :b] > 0) for b in lengths)
        return [f"{recall(true, r, 100):.4f}" for r in ranked]

    print(
        f"\n## {args.corpus}: {len(Xdb):,} database rows ({fit_rows:,} fitted on), "
        f"{len(Xq):,} queries, recall10@100\n"
    )
    print_header("seed", "codes", "anchors", "k", "lam", *map(str, lengths), "fit s", left=3)
    for seed in args.seeds:
        nested = tuple(args.prefixes) or None  # --prefixes with no value: a code of one length
        enc = BinaryHashEncoder(
            n_bits=args.bits, nested_bits=nested, random_state=seed, **{"n_anchors": 0, **params}
        )
        if not args.no_rule:
            seconds, _ = timed(lambda enc=enc: enc.fit(Xfit))
            f_db, f_q = enc.embed(Xdb), enc.embed(Xq)
            print_row(seed, "the rule", "", "", "", *cells(f_db, f_q), f"{seconds:.0f}")
        for n_anchors in [] if args.no_rule else args.anchors:
            anchors, values = anchor_table(db_unit[:fit_rows], f_db[:fit_rows], n_anchors, seed)
            name = "database rows" if n_anchors == 0 else f"{n_anchors:,}"
            for k in args.ks:
                mean_db = values[nearest(db_unit, anchors, k)].mean(axis=1)
                mean_q = values[nearest(q_unit, anchors, k)].mean(axis=1)
                for lam in args.lams:
                    g_db, g_q = f_db + lam * mean_db, f_q + lam * mean_q
                    print_row(seed, "smoothed, both", name, k, lam, *cells(g_db, g_q), "")
                    print_row(seed, "smoothed, queries only", name, k, lam, *cells(f_db, g_q), "")
        speeds = []
        for n_anchors in args.n_anchors:
            for k in args.ks:
                for lam in args.lams:
                    model = BinaryHashEncoder(
                        n_bits=args.bits, nested_bits=nested, random_state=seed,
                        n_anchors=n_anchors, anchor_neighbors=k, anchor_weight=lam, **params,
                    )  # fmt: skip
                    s, _ = timed(lambda model=model: model.fit(Xfit))
                    name = f"{model.n_anchors_:,}"
                    g_db, g_q = model.embed(Xdb), model.embed(Xq)
                    print_row(
                        seed, "n_anchors (encoder)", name, k, lam, *cells(g_db, g_q), f"{s:.0f}"
                    )
                    label = f"n_anchors={n_anchors:,}, k={k}, lam={lam}"
                    speeds.append((label, *encode_seconds(model, Xq)))
        if args.pair:
            half = args.bits // 2
            pair, pair_seconds = [], 0.0
            for pair_seed in (seed, seed + 1):
                model = BinaryHashEncoder(
                    n_bits=half,
                    nested_bits=tuple(args.prefixes[:1]) or None,
                    random_state=pair_seed,
                    **params,
                )
                s, _ = timed(lambda model=model: model.fit(Xfit))
                pair.append((model.embed(Xdb), model.embed(Xq)))
                pair_seconds += s
            (a_db, a_q), (b_db, b_q) = pair
            both_db, both_q = np.hstack([a_db, b_db]), np.hstack([a_q, b_q])
            label = f"two {half}-bit models (seeds {seed}, {seed + 1})"
            print_row(seed, label, "", "", "", *cells(both_db, both_q), f"{pair_seconds:.0f}")
        itq = []
        for b in lengths:
            model = PCAITQ(n_bits=b, random_state=seed).fit(Xfit)
            ranked = hamming_ranking(model.transform(Xdb), model.transform(Xq))
            itq.append(f"{recall(true, ranked, 100):.4f}")
        print_row(seed, "PCA-ITQ", "", "", "", *itq, "")
        for label, network, smoothed in speeds:
            print(
                f"\nseed {seed}, {label}: encoding the {len(Xq):,} queries "
                f"(numpy forward pass, best of 3) {network * 1e3:.0f} ms without the anchors, "
                f"{smoothed * 1e3:.0f} ms with them ({smoothed / network:.2f}x)"
            )
    print_command()


if __name__ == "__main__":
    main()
