"""How good are the codes? Recall and mAP on a MiniLM corpus against the baselines.

Protocol (see ../shared/data/README.md): a seeded split into 2,000 queries and
the database (``_harness.load_split``: 12,813 fortunes or 18,000 man-page
paragraphs); ground truth = each query's 10
nearest database items by cosine. Every encoder is fitted on the database only,
with default settings (``_harness.encoders``: skhash, PCA-ITQ, SimHash).

- unsupervised: recall of the 10 true neighbours among the 10 and the 100 nearest
  codes (ties by index), mean over seeds, and the miss rate (1 - recall10@100)
  of skhash over PCA-ITQ's;
- supervised (``fit(X, y)``): mAP@100 with relevance = same fortune file, next to
  float-cosine kNN;
- at as many bits as the input has features (``--sign-bits``; 384 for MiniLM):
  against sign-binarising the raw embedding, one bit per feature.

Answers issue 4 (code quality; the README and ``docs/benchmarks.md`` tables).

Usage::

    python benchmarks/quality.py --bits 32 64 128 --seeds 0 1 2 --supervised-bits 64 --sign-bits
    python benchmarks/quality.py --corpus manpages --bits 128 256 --supervised-bits
    python benchmarks/quality.py --bits 128 --params '{"hidden_layer_sizes": [2048]}'
    python benchmarks/quality.py --quick                      # smoke run
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json

import numpy as np
from _harness import (
    CORPORA,
    Sign,
    encoders,
    float_ranking,
    hamming_ranking,
    load_split,
    machine_line,
    map_at,
    parse_args,
    print_command,
    print_header,
    print_row,
    recall,
    timed,
)


def evaluate(est, Xdb, Xq, y=None):
    """Hamming ranking of the queries after fitting ``est`` on the database; fit seconds."""
    fit_s, _ = timed(lambda: est.fit(Xdb, y))
    return hamming_ranking(est.transform(Xdb), est.transform(Xq)), fit_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--supervised-bits", type=int, nargs="*", default=[64])
    parser.add_argument(
        "--sign-bits", action="store_true", help="also run b = n_features (384 for MiniLM)"
    )
    parser.add_argument("--n-database", type=int, default=None, help="first database rows only")
    parser.add_argument("--max-epochs", type=int, default=None, help="encoder max_epochs")
    parser.add_argument("--params", default="{}", help="more BinaryHashEncoder settings (JSON)")
    parser.add_argument("--corpus", choices=CORPORA, default="fortunes", help="data set")
    quick = dict(bits=[8], seeds=[0], supervised_bits=[8], n_database=2000, max_epochs=2)
    args = parse_args(parser, quick, argv)
    params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    params.update(json.loads(args.params))

    print(machine_line(), flush=True)
    Xdb, ydb, Xq, yq = load_split(seed=0, n_database=args.n_database, corpus=args.corpus)
    true = float_ranking(Xdb, Xq, 10)
    float_ranked = float_ranking(Xdb, Xq, 100)
    print(
        f"{args.corpus}: {len(Xdb):,} database rows, {len(Xq):,} queries, "
        f"encoder settings {params or 'default'}"
    )
    print(f"float cosine: recall10@10 1.000, mAP@100 (labels) {map_at(yq, ydb, float_ranked):.4f}")

    print("\n## Unsupervised recall10@100 (mean over seeds", args.seeds, ")\n")
    print_header(
        "bits", "skhash", "PCA-ITQ", "SimHash", "skhash / ITQ", "miss skhash / ITQ",
        "skhash r10@10", "ITQ r10@10", "skhash fit s", "teacher T",
    )  # fmt: skip
    # sign(X) has one bit per feature: compared at that length (digits: 64, LSA: 256)
    width = Xdb.shape[1]
    for b in list(args.bits) + ([width] if args.sign_bits else []):
        rows = {"skhash": [], "PCA-ITQ": [], "SimHash": [], "skhash10": [], "PCA-ITQ10": []}
        rows["fit"], rows["T"] = [], []
        for seed in args.seeds:
            for key, est in encoders(b, seed, **params).items():
                ranked, fit_s = evaluate(est, Xdb, Xq)
                rows[key].append(recall(true, ranked, 100))
                if key in ("skhash", "PCA-ITQ"):
                    rows[key + "10"].append(recall(true, ranked, 10))
                if key == "skhash":
                    rows["fit"].append(fit_s)
                    rows["T"].append(est.teacher_temperature_)
        m = {k: float(np.mean(v)) for k, v in rows.items()}
        print_row(
            b, f"{m['skhash']:.4f}", f"{m['PCA-ITQ']:.4f}", f"{m['SimHash']:.3f}",
            f"{m['skhash'] / m['PCA-ITQ']:.3f}", f"{(1 - m['skhash']) / (1 - m['PCA-ITQ']):.3f}",
            f"{m['skhash10']:.3f}", f"{m['PCA-ITQ10']:.3f}",
            f"{m['fit']:.0f}", f"{m['T']:.4f}",
        )  # fmt: skip
        if b == width:
            ranked, _ = evaluate(Sign(), Xdb, Xq)
            r100, r10 = recall(true, ranked, 100), recall(true, ranked, 10)
            print_row(b, f"sign(X): {r100:.3f}", "", "", "", "", f"{r10:.3f}", "", "", "")

    if args.supervised_bits:
        print("\n## Supervised mAP@100 (labels = fortune file / man page), seed 0\n")
        print_header("bits", "skhash fit(X, y)", "skhash fit(X)", "PCA-ITQ", "float cosine kNN")
        for b in args.supervised_bits:
            sup, _ = evaluate(encoders(b, 0, **params)["skhash"], Xdb, Xq, ydb)
            uns, _ = evaluate(encoders(b, 0, **params)["skhash"], Xdb, Xq)
            itq, _ = evaluate(encoders(b, 0)["PCA-ITQ"], Xdb, Xq)
            print_row(
                b, f"{map_at(yq, ydb, sup):.4f}", f"{map_at(yq, ydb, uns):.4f}",
                f"{map_at(yq, ydb, itq):.4f}", f"{map_at(yq, ydb, float_ranked):.4f}",
            )  # fmt: skip
    print_command()


if __name__ == "__main__":
    main()
