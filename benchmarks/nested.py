"""Nested (Matryoshka) codes: is each prefix of one fit as good as a model of that length?

Protocol (as ``quality.py``): a seeded split into 2,000 held-out queries and the
database (``_harness.load_split``; man pages split the same way), ground truth =
each query's 10 nearest database rows by cosine, recall10@100 of the Hamming
ranking (ties by index). In one run, per corpus and seed:

- one ``BinaryHashEncoder(n_bits=N, nested_bits=prefixes)`` fit; the recall of
  each prefix ``transform(X)[:, :p]`` and of the full code;
- a default ``BinaryHashEncoder(n_bits=p)`` fitted for each length alone;
- PCA-ITQ at each length.

With ``--cascade``: search with the nested model's codes through
:class:`~skhash.HammingNeighbors` (public API, brute force) either as one flat
scan of the full packed code, or as a cascade: a prefix's packed codes
(``--cascade-prefixes``, the shortest prefix by default) give ``--first``
candidates, the full code reranks them to ``--candidates``, then float cosine
rescoring keeps 10; recall10@10 after rescoring and queries per second of
search + rerank + rescoring (query encoding excluded, the same for both).

``--embeddings N`` replaces the corpora by ``N`` database rows made from both
corpora's real embeddings (``_embedding_codes.synthetic_embeddings``: 2,000
held-out real rows as queries, database rows interpolated between a real row
and one of its neighbours plus noise): the cascade at the scale where a flat
scan is expensive. Only the nested model is fitted there (on its default
sample of ``max_samples`` rows); ground truth by exact cosine over all rows.

Usage::

    python benchmarks/nested.py --bits 128 --prefixes 32 64 --corpora fortunes --cascade
    python benchmarks/nested.py --bits 256 --prefixes 32 64 128 --embeddings 1000000 \
        --cascade --cascade-prefixes 32 64 --max-epochs 10
    python benchmarks/nested.py --corpora fortunes --no-alone --params '{"beta_max": 8}'
    python benchmarks/nested.py --quick        # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json

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


def load_corpus(name, n_queries=2000, seed=0, n_database=None):
    """(X_db, X_q) of a corpus, split by :func:`_harness.load_split`."""
    Xdb, _, Xq, _ = load_split(n_queries, seed, n_database, corpus=name)
    return Xdb, Xq


def load_embeddings(n):
    """(X_db, X_q, true10) of ``n`` rows made from the real embeddings; exact cosine top 10."""
    from _embedding_codes import nearest_rows, synthetic_embeddings

    Xdb, Xq = synthetic_embeddings(n)  # unit rows
    true = nearest_rows(Xq, Xdb, 10, chunk=64)  # 64 x n similarities at a time
    sims = np.einsum("qd,qcd->qc", Xq, Xdb[true])
    return Xdb, Xq, np.take_along_axis(true, np.argsort(-sims, axis=1, kind="stable"), 1)


def encode(enc, X, chunk=100_000):
    """``enc.transform(X)`` in chunks (the hidden layer of 10^6 rows does not fit at once)."""
    return np.concatenate([enc.transform(X[i : i + chunk]) for i in range(0, len(X), chunk)])


def recall_of(codes_db, codes_q, true):
    return recall(true, hamming_ranking(codes_db, codes_q, 100), 100)


def rescore(Xdb_unit, Xq_unit, candidates, k=10):
    """The ``k`` candidates of highest cosine, per query."""
    sims = np.einsum("qd,qcd->qc", Xq_unit, Xdb_unit[candidates])
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, top, axis=1)


def rerank_full(packed_db, packed_q, candidates, keep):
    """The ``keep`` candidates nearest in the full code's Hamming distance (ties by order)."""
    dist = np.bitwise_count(packed_db[candidates] ^ packed_q[:, None, :]).sum(-1, dtype=np.int32)
    order = np.argsort(dist, axis=1, kind="stable")[:, :keep]
    return np.take_along_axis(candidates, order, axis=1)


def cascade_table(enc, Xdb, Xq, true10, prefixes, first, n_candidates, repeat):
    """Flat scan of the full code vs prefix scan + full rerank, both then float rescoring."""
    from skhash import HammingNeighbors

    codes_db, codes_q = encode(enc, Xdb), enc.transform(Xq)
    full_db, full_q = np.packbits(codes_db, axis=1), np.packbits(codes_q, axis=1)
    unit_db = Xdb / np.linalg.norm(Xdb, axis=1, keepdims=True)
    unit_q = Xq / np.linalg.norm(Xq, axis=1, keepdims=True)
    flat = HammingNeighbors(algorithm="brute", packed=True).fit(full_db)

    def run_flat():
        cand = flat.kneighbors(full_q, n_candidates, return_distance=False)
        return cand, rescore(unit_db, unit_q, cand)

    def cascade(prefix):
        pre_db, pre_q = (np.packbits(c[:, :prefix], axis=1) for c in (codes_db, codes_q))
        short = HammingNeighbors(algorithm="brute", packed=True).fit(pre_db)

        def run():
            cand = short.kneighbors(pre_q, first, return_distance=False)
            cand = rerank_full(full_db, full_q, cand, n_candidates)
            return cand, rescore(unit_db, unit_q, cand)

        return run

    n_bits = codes_db.shape[1]
    searches = [(f"flat scan, {n_bits} bits", run_flat)] + [
        (f"{p}-bit scan to {first}, {n_bits}-bit rerank to {n_candidates}", cascade(p))
        for p in prefixes
    ]
    for _, fn in searches:
        fn()  # compile the kernels, warm the caches
    print(
        f"\n### Cascade, nested {n_bits}-bit model: {len(Xq):,} queries, "
        f"{len(Xdb):,} rows, float rescoring of {n_candidates} candidates to 10\n"
    )
    print_header("search", "candidate recall10@cand", "recall10@10 rescored", "QPS", left=1)
    for name, fn in searches:
        seconds, (cand, top) = best_of(fn, repeat)
        print_row(
            name,
            f"{recall(true10, cand, n_candidates):.3f}",
            f"{recall(true10, top, 10):.3f}",
            f"{len(Xq) / seconds:,.0f}",
        )


def at_scale(args, params, cascade_prefixes):
    """The cascade table on ``args.embeddings`` rows made from the real embeddings."""
    from skhash import BinaryHashEncoder

    seconds, (Xdb, Xq, true) = timed(lambda: load_embeddings(args.embeddings))
    print(f"{len(Xdb):,} rows and {len(Xq):,} queries with ground truth in {seconds:.0f} s")
    enc = BinaryHashEncoder(
        n_bits=args.bits, nested_bits=tuple(args.prefixes), random_state=args.seeds[0], **params
    )
    seconds, _ = timed(lambda: enc.fit(Xdb))
    print(f"nested fit, settings {params or 'default'}: {seconds:.0f} s", flush=True)
    cascade_table(enc, Xdb, Xq, true, cascade_prefixes, args.first, args.candidates, args.repeat)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=128, help="full code length N")
    parser.add_argument("--prefixes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--corpora", nargs="+", default=["fortunes", "manpages"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--alone-full", action="store_true", help="also fit N bits alone")
    parser.add_argument("--no-alone", action="store_true", help="fit no model per length")
    parser.add_argument("--cascade", action="store_true")
    parser.add_argument(
        "--cascade-prefixes", type=int, nargs="+", default=None, help="prefixes scanned first"
    )
    parser.add_argument(
        "--embeddings", type=int, default=None, help="N rows made from the real embeddings"
    )
    parser.add_argument("--first", type=int, default=1000, help="prefix-scan candidates")
    parser.add_argument("--candidates", type=int, default=100, help="rescored candidates")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best kept")
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-epochs", type=int, default=None, help="encoder max_epochs")
    parser.add_argument("--params", default="{}", help="more BinaryHashEncoder settings (JSON)")
    quick = dict(bits=32, prefixes=[8, 16], corpora=["fortunes"], n_database=2000, max_epochs=2)
    args = parse_args(parser, quick, argv)
    params = json.loads(args.params)  # for every model of the run, nested and alone
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs

    from skhash import PCAITQ, BinaryHashEncoder

    print(machine_line(), flush=True)
    lengths = [*args.prefixes, args.bits]
    cascade_prefixes = args.cascade_prefixes or args.prefixes[:1]
    if args.embeddings:
        at_scale(args, params, cascade_prefixes)
        print_command()
        return
    for corpus in args.corpora:
        Xdb, Xq = load_corpus(corpus, n_database=args.n_database)
        true = float_ranking(Xdb, Xq, 10)
        print(
            f"\n## {corpus}: {len(Xdb):,} database rows, {len(Xq):,} queries, recall10@100, "
            f"seeds {args.seeds}, encoder settings {params or 'default'}\n"
        )
        rows = {b: {"nested": [], "alone": [], "itq": []} for b in lengths}
        fit_s = {"nested": [], "alone": []}
        for seed in args.seeds:
            enc = BinaryHashEncoder(
                n_bits=args.bits, nested_bits=tuple(args.prefixes), random_state=seed, **params
            )
            seconds, _ = timed(lambda enc=enc, X=Xdb: enc.fit(X))
            fit_s["nested"].append(seconds)
            codes_db, codes_q = enc.transform(Xdb), enc.transform(Xq)
            for b in lengths:
                rows[b]["nested"].append(recall_of(codes_db[:, :b], codes_q[:, :b], true))
                itq = PCAITQ(n_bits=b, random_state=seed).fit(Xdb)
                rows[b]["itq"].append(recall_of(itq.transform(Xdb), itq.transform(Xq), true))
                if (b < args.bits or args.alone_full) and not args.no_alone:
                    alone = BinaryHashEncoder(n_bits=b, random_state=seed, **params)
                    seconds, _ = timed(lambda est=alone, X=Xdb: est.fit(X))
                    fit_s["alone"].append(seconds)
                    rows[b]["alone"].append(
                        recall_of(alone.transform(Xdb), alone.transform(Xq), true)
                    )
                got = {
                    k: f"{v[-1]:.4f}" for k, v in rows[b].items() if len(v) == len(fit_s["nested"])
                }
                print(f"  seed {seed}, {b} bits: {got}", flush=True)
        print_header(
            "bits", f"nested {args.bits}-bit prefix", "fitted alone", "nested / alone",
            "PCA-ITQ", "nested / ITQ", "miss nested / ITQ",
        )  # fmt: skip
        for b in lengths:
            m = {k: float(np.mean(v)) for k, v in rows[b].items() if v}
            # "-" where no model was fitted for the length alone (--no-alone, the full length)
            alone = ("-", "-")
            if "alone" in m:
                alone = (f"{m['alone']:.4f}", f"{m['nested'] / m['alone']:.3f}")
            print_row(
                b, f"{m['nested']:.4f}", *alone, f"{m['itq']:.4f}",
                f"{m['nested'] / m['itq']:.3f}", f"{(1 - m['nested']) / (1 - m['itq']):.3f}",
            )  # fmt: skip
        alone_s = f"{np.mean(fit_s['alone']):.0f}" if fit_s["alone"] else "-"
        print(
            f"\nfit seconds (mean): nested {np.mean(fit_s['nested']):.0f}, "
            f"each length alone {alone_s}",
            flush=True,
        )
        if args.cascade:
            cascade_table(
                enc, Xdb, Xq, true, cascade_prefixes, args.first, args.candidates, args.repeat
            )
    print_command()


if __name__ == "__main__":
    main()
