"""Code quality on the fortunes embeddings against SimHash, PCA-ITQ, sign and float.

Protocol (see ../shared/data/README.md): a seeded split into 2,000 queries and
12,813 database items; ground truth = each query's 10 nearest database items by
cosine. Every encoder is fitted on the database only, with default settings.

- unsupervised: recall of the 10 true neighbours among the 10 and the 100 nearest
  codes (ties by index), mean over seeds;
- supervised (``fit(X, y)``): mAP@100 with relevance = same fortune file, next to
  float-cosine kNN;
- at 384 bits: against sign-binarising the raw embedding.

    python benchmarks/quality.py --bits 32 64 128 --seeds 0 1 2
"""

import argparse
import time

import numpy as np
from _fortunes import float_ranking, hamming_ranking, load_split, map_at, recall

from skhash import PCAITQ, BinaryHashEncoder, SimHash


class Sign:
    """Sign-binarise the raw embedding (what sentence-transformers' binary quantisation does)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return (X > 0).astype(np.uint8)


def evaluate(est, Xdb, Xq, true, y=None):
    t = time.perf_counter()
    est.fit(Xdb, y)
    fit_s = time.perf_counter() - t
    ranked = hamming_ranking(est.transform(Xdb), est.transform(Xq))
    return ranked, fit_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--supervised-bits", type=int, nargs="*", default=[64])
    parser.add_argument("--sign-bits", action="store_true", help="also run b = 384")
    args = parser.parse_args()

    Xdb, ydb, Xq, yq = load_split(seed=0)
    true = float_ranking(Xdb, Xq, 10)
    float_ranked = float_ranking(Xdb, Xq, 100)
    print(f"float cosine: recall10@10 1.000, mAP@100 (labels) {map_at(yq, ydb, float_ranked):.4f}")

    print("\n## Unsupervised recall10@100 (mean over seeds", args.seeds, ")\n")
    print(
        "| bits | skhash | PCA-ITQ | SimHash | skhash / ITQ | skhash r10@10 | ITQ r10@10 "
        "| skhash fit s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    bits_list = list(args.bits) + ([384] if args.sign_bits else [])
    for b in bits_list:
        rows = {"skhash": [], "itq": [], "simhash": [], "skhash10": [], "itq10": [], "fit": []}
        for seed in args.seeds:
            for key, est in [
                ("skhash", BinaryHashEncoder(n_bits=b, random_state=seed)),
                ("itq", PCAITQ(n_bits=b, random_state=seed)),
                ("simhash", SimHash(n_bits=b, random_state=seed)),
            ]:
                ranked, fit_s = evaluate(est, Xdb, Xq, true)
                rows[key].append(recall(true, ranked, 100))
                if key in ("skhash", "itq"):
                    rows[key + "10"].append(recall(true, ranked, 10))
                if key == "skhash":
                    rows["fit"].append(fit_s)
        m = {k: float(np.mean(v)) for k, v in rows.items()}
        print(
            f"| {b} | {m['skhash']:.3f} | {m['itq']:.3f} | {m['simhash']:.3f} "
            f"| {m['skhash'] / m['itq']:.3f} | {m['skhash10']:.3f} | {m['itq10']:.3f} "
            f"| {m['fit']:.0f} |",
            flush=True,
        )
        if b == 384:
            ranked, _ = evaluate(Sign(), Xdb, Xq, true)
            print(
                f"| 384 | sign(X): {recall(true, ranked, 100):.3f} | | | | "
                f"{recall(true, ranked, 10):.3f} | | |",
                flush=True,
            )

    if args.supervised_bits:
        print("\n## Supervised mAP@100 (labels = fortune file), seed 0\n")
        print("| bits | skhash fit(X, y) | skhash fit(X) | PCA-ITQ | float cosine kNN |")
        print("|---|---|---|---|---|")
        for b in args.supervised_bits:
            sup, _ = evaluate(BinaryHashEncoder(n_bits=b, random_state=0), Xdb, Xq, true, ydb)
            uns, _ = evaluate(BinaryHashEncoder(n_bits=b, random_state=0), Xdb, Xq, true)
            itq, _ = evaluate(PCAITQ(n_bits=b, random_state=0), Xdb, Xq, true)
            print(
                f"| {b} | {map_at(yq, ydb, sup):.4f} | {map_at(yq, ydb, uns):.4f} "
                f"| {map_at(yq, ydb, itq):.4f} | {map_at(yq, ydb, float_ranked):.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
