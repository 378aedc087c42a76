"""Shared protocol for the benchmarks on the fortunes embeddings (../shared/data)."""

import os
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("SKHASH_DATA", Path(__file__).parents[2] / "shared" / "data"))


def load_split(n_queries=2000, seed=0):
    """Database / query split of the fortunes MiniLM embeddings (float32)."""
    d = np.load(DATA / "fortunes_minilm.npz")
    X = d["X"].astype(np.float32)
    y = d["y"]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    q, db = order[:n_queries], order[n_queries:]
    return X[db], y[db], X[q], y[q]


def hamming_ranking(db_bits, q_bits, depth=100):
    """Database indices ranked by Hamming distance to each query, ties by index."""
    a = q_bits.astype(np.float32) * 2 - 1
    b = db_bits.astype(np.float32) * 2 - 1
    dist = np.rint((a.shape[1] - a @ b.T) / 2).astype(np.int32)
    return np.argsort(dist, axis=1, kind="stable")[:, :depth]


def float_ranking(db, q, depth=100):
    """Database indices ranked by cosine similarity to each query."""
    dbn = db / np.linalg.norm(db, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(qn @ dbn.T), axis=1, kind="stable")[:, :depth]


def recall(true, ranked, depth):
    """Share of the true neighbours found among the first ``depth`` ranked."""
    hits = [len(np.intersect1d(t, r[:depth])) for t, r in zip(true, ranked, strict=True)]
    return float(np.mean(hits) / true.shape[1])


def map_at(q_labels, db_labels, ranked, depth=100):
    """mAP@depth with relevance = same label (normalised by relevant retrieved)."""
    rel = db_labels[ranked[:, :depth]] == q_labels[:, None]
    prec = np.cumsum(rel, axis=1) / np.arange(1, depth + 1)
    n_rel = rel.sum(1)
    ap = np.where(n_rel > 0, (prec * rel).sum(1) / np.maximum(n_rel, 1), 0.0)
    return float(ap.mean())
