"""Semantic search over quotations: an 8-byte code index, saved, served and rescored.

Uses 14,813 quotations (Debian's ``fortunes``) embedded with the sentence model
all-MiniLM-L6-v2 (384 float dimensions, see ``../shared/data/README.md`` beside the
repository). 500 quotations are held out: they play new texts whose embeddings
arrive at query time. The rest are indexed, end to end:

1. fit a :class:`~skhash.HashIndex`: a :class:`~skhash.BinaryHashEncoder` learns
   64-bit codes (8 bytes per item), the index keeps them with the row numbers as
   ids and float16 copies of the embeddings for rescoring;
2. save it to a directory (JSON manifest and ``.npy`` files, the network's weights in
   safetensors when it is installed; no pickle);
3. load it in a fresh process, which answers the held-out queries without
   importing torch: Hamming candidates, then exact cosine rescoring;
4. compare with exact float search: recall of the 10 cosine neighbours with and
   without rescoring, and for one query the three rankings side by side;
5. remove an item and add it back, without retraining.

The figure shows recall@10 against the number of candidates rescored, the Hamming
distances of cosine neighbours against random pairs, and the encoder's outputs.

Without the data file the script explains how to embed your own texts and exits
(``SKHASH_FORTUNES`` names another ``.npz`` with keys ``X`` and ``text``); in the fast
mode it then makes up random "texts" instead.

    python examples/text_retrieval.py [figure.png] [--query N]   # about a minute
    SKHASH_FAST=1 python examples/text_retrieval.py               # seconds, for the tests
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from skhash import BinaryHashEncoder, HashIndex
from skhash.metrics import recall_at_k

FAST = bool(os.environ.get("SKHASH_FAST"))
REPO = Path(__file__).resolve().parents[1]
GIVEN = os.environ.get("SKHASH_FORTUNES")
DATA = Path(GIVEN or REPO.parent / "shared" / "data" / "fortunes_minilm.npz")
N_BITS = 32 if FAST else 64
N_QUERIES = 50 if FAST else 500
N_DATABASE = 2000 if FAST else None  # None: all the rest
ENCODER = dict(hidden_layer_sizes=(32,), max_epochs=2) if FAST else dict(max_epochs=20)

HOW_TO = """\
The example data {path} is not here.

To search your own texts, embed them with any sentence-embedding model and save
the vectors and texts, e.g. with sentence-transformers:

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    X = model.encode(texts, normalize_embeddings=True)   # (n, 384) float32
    np.savez("my_texts.npz", X=X, text=np.array(texts))

then run  SKHASH_FORTUNES=my_texts.npz python examples/text_retrieval.py
(a few thousand texts are enough to learn codes). The core of it is:

    index = HashIndex(encoder=BinaryHashEncoder(n_bits=64)).fit(X, ids=my_ids)
    index.save("my_index")
    # later, in the serving process (no torch needed):
    distances, ids = HashIndex.load("my_index").kneighbors(X_query, n_neighbors=10)
"""


def short(text, width=110):
    return textwrap.shorten(str(text), width=width, placeholder=" ...")


def cosine_top_k(queries, database, k, exclude_self=False):
    """Exact top-k database rows by cosine similarity, best first."""
    sims = queries @ database.T
    if exclude_self:  # queries are the database: row i is not its own neighbour
        np.fill_diagonal(sims, -np.inf)
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return top, np.take_along_axis(sims, top, axis=1)


def serve(index_dir, queries_file, out_file):
    """The serving process: load the index, answer the queries, say whether torch loaded."""
    start = time.perf_counter()
    index = HashIndex.load(index_dir, verify=True)
    distances, ids = index.kneighbors(np.load(queries_file), n_neighbors=10)
    np.savez(out_file, distances=distances, ids=ids)
    print(
        f"  serving process: loaded {len(index)} items and answered "
        f"{len(ids)} queries in {time.perf_counter() - start:.2f} s; "
        f"torch imported: {'torch' in sys.modules}"
    )


def load_texts():
    if DATA.exists():
        data = np.load(DATA)
        return data["X"].astype(np.float32), data["text"]
    if FAST and not GIVEN:  # the tests run without ../shared/data
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((20, 48))
        X = centres[rng.integers(0, 20, 2600)] + 0.5 * rng.standard_normal((2600, 48))
        return X.astype(np.float32), np.array([f"made-up text {i}" for i in range(2600)])
    return None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "figure",
        nargs="?",
        type=Path,
        default=Path(__file__).parent / "figures" / "text_retrieval.png",
    )
    parser.add_argument(
        "--query", type=int, default=0, help=f"which held-out query to show (0 to {N_QUERIES - 1})"
    )
    parser.add_argument(
        "--serve", nargs=3, metavar=("INDEX", "QUERIES", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return

    X, texts = load_texts()
    if X is None:
        print(HOW_TO.format(path=DATA))
        return
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    order = np.random.default_rng(0).permutation(len(X))
    queries, database = order[:N_QUERIES], order[N_QUERIES:]
    if N_DATABASE is not None:
        database = database[:N_DATABASE]
    X_query, X_db = X[queries], X[database]
    print(
        f"{len(X_db)} indexed texts, {len(X_query)} new texts as queries, "
        f"{X.shape[1]} float dimensions = {X.shape[1] * 4} bytes per item (float32)"
    )

    # 1. fit: ids are the texts' row numbers in the file, kept through everything
    start = time.perf_counter()
    encoder = BinaryHashEncoder(n_bits=N_BITS, random_state=0, **ENCODER)
    index = HashIndex(encoder=encoder, rescore="float16").fit(X_db, ids=database)
    print(
        f"HashIndex: {N_BITS}-bit codes = {N_BITS // 8} bytes per item in RAM, float16 "
        f"vectors for rescoring on disk; fitted in {time.perf_counter() - start:.0f} s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        # 2. save, 3. load and query in a fresh process
        index.save(Path(tmp) / "index")
        size = sum(p.stat().st_size for p in (Path(tmp) / "index").rglob("*") if p.is_file())
        print(f"saved to a directory of {size / 1e6:.1f} MB; serving from a new process:")
        np.save(Path(tmp) / "queries.npy", X_query)
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--serve",
                str(Path(tmp) / "index"),
                str(Path(tmp) / "queries.npy"),
                str(Path(tmp) / "out.npz"),
            ],
            check=True,
        )
        served = np.load(Path(tmp) / "out.npz")
        distances, retrieved = served["distances"], served["ids"]

    # 4. quality against exact float search (ids are rows of the file)
    true_rows, true_sims = cosine_top_k(X_query, X_db, 10)
    true_top = database[true_rows]
    hamming_d, hamming = index.set_params(rescore=None).kneighbors(X_query, 10)
    index.set_params(rescore="float16")
    print(f"\n{'search':<34}  recall 10@10   (cosine top 10 found)")
    print(f"{'Hamming distance only':<34}  {recall_at_k(true_top, hamming, k=10):12.3f}")
    print(
        f"{f'+ rescoring {index.n_candidates * 10} candidates':<34}  "
        f"{recall_at_k(true_top, retrieved, k=10):12.3f}"
    )

    q = args.query % N_QUERIES
    print(f"\nQuery: {short(texts[queries[q]], 200)}")
    print(f"\n  nearest by Hamming distance ({N_BITS}-bit codes):")
    for d, i in zip(hamming_d[q, :5], hamming[q, :5], strict=True):
        print(f"    {d:3d}  {short(texts[i])}")
    print("\n  after rescoring (cosine distance):")
    for d, i in zip(distances[q, :5], retrieved[q, :5], strict=True):
        print(f"    {d:.2f}  {short(texts[i])}")
    print("\n  nearest by cosine similarity (float embeddings):")
    for s, i in zip(true_sims[q, :5], true_top[q, :5], strict=True):
        print(f"    {s:.2f}  {short(texts[i], 90)}")

    # 5. remove the best answer and add it back, no retraining
    best = int(retrieved[q, 0])
    index.remove([best])
    assert best not in index.kneighbors(X_query[q : q + 1], 10)[1]
    index.add(X[best : best + 1], ids=[best])
    assert index.kneighbors(X_query[q : q + 1], 10)[1][0, 0] == best
    print(f"\nremoved id {best} and added it back: {len(index)} items, same answer")

    import matplotlib.pyplot as plt

    from skhash.plotting import plot_code_histograms, plot_hamming_distances

    multipliers = [1, 2, 5, 10, 20, 50]
    curve = [
        recall_at_k(
            true_top,
            index.set_params(n_candidates=m).kneighbors(X_query, 10, return_distance=False),
            k=10,
        )
        for m in multipliers
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    axes[0].plot(multipliers, curve, marker="o")
    axes[0].set(
        xscale="log",
        xlabel="n_candidates (x 10)",
        ylabel="recall@10",
        title="rescoring Hamming candidates",
    )
    subset = X_db[:2000]
    neighbors, _ = cosine_top_k(subset, subset, 10, exclude_self=True)
    plot_hamming_distances(
        index.encoder_.transform(subset),
        neighbors,
        random_state=0,
        ax=axes[1],
        title=f"{N_BITS}-bit codes",
    )
    plot_code_histograms(index.encoder_, ax=axes[2])
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=80)
    print(f"\nwrote {args.figure}")


if __name__ == "__main__":
    main()
