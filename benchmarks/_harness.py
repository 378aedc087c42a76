"""Shared harness of the benchmark scripts: data, baselines, timing, machine line, tables.

The scripts in this folder are run by hand (``python benchmarks/<script>.py``);
each prints :func:`machine_line` first, so a table always says where it was
measured, and ``Command: ...`` last (:func:`print_command`). Every
script but ``retrieval.py`` and ``index_search_speed.py`` takes ``--quick``
(:func:`parse_args`): the smallest sizes, to prove it runs.

Data: the fortunes MiniLM embeddings in ``../shared/data`` (or ``$SKHASH_DATA``), or
another corpus of :data:`CORPORA` (man pages; either corpus's texts as TF-IDF + LSA
vectors; scikit-learn's digits), split by :func:`load_split` into a seeded database
and held-out queries; the
ground truth of the quality benchmarks is each query's nearest database rows
by cosine (:func:`float_ranking`).
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import os
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("SKHASH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
VERSIONED = ("numpy", "scikit-learn", "numba", "pynndescent", "torch", "skorch")


# Data and retrieval measures ------------------------------------------------


#: Corpora of :func:`load_split`: the two MiniLM embedding sets in ``DATA``, the same texts
#: as TF-IDF + LSA vectors (another feature space, as a corpus the defaults were not tuned
#: on), and scikit-learn's digits (8x8 pixel counts: no embedding at all).
CORPORA = ("fortunes", "manpages", "fortunes-lsa", "manpages-lsa", "digits")
#: Held-out queries per corpus (2,000 unless listed).
N_QUERIES = {"digits": 400}


def load_corpus(corpus="fortunes", label="y"):
    """``(X, y)`` of a corpus of :data:`CORPORA`, float32 rows in a fixed order.

    ``"<name>-lsa"``: the corpus's ``text`` as sublinear TF-IDF (terms in at
    least 2 texts) reduced to 256 dimensions by truncated SVD (``random_state=0``)
    and scaled to unit length (as scikit-learn's LSA examples do: cosine is
    unchanged, and PCA-ITQ sees the same geometry), rows without a kept term
    dropped (their cosine is undefined). ``"digits"``:
    :func:`sklearn.datasets.load_digits`, the digit as label.
    """
    if corpus == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X.astype(np.float32), y
    name, _, features = corpus.partition("-")
    data = np.load(DATA / f"{name}_minilm.npz")
    if not features:
        return data["X"].astype(np.float32), data[label]
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(data["text"])
    X = TruncatedSVD(256, random_state=0).fit_transform(tfidf)
    keep = np.asarray(tfidf.getnnz(axis=1) > 0)
    X = X[keep] / np.linalg.norm(X[keep], axis=1, keepdims=True)  # as LSA is used: unit rows
    return X.astype(np.float32), data[label][keep]


def load_split(n_queries=None, seed=0, n_database=None, corpus="fortunes", label="y"):
    """Database / query split of a corpus (:func:`load_corpus`).

    A seeded permutation: its first ``n_queries`` rows are the queries, the
    rest the database (12,813 fortunes or 18,000 man-page paragraphs with the
    defaults). ``n_database`` keeps only the first rows of that database (for
    smoke runs).

    Parameters
    ----------
    n_queries : int, default=None
        2,000, or :data:`N_QUERIES` of the corpus (400 digits).
    corpus : str
        One of :data:`CORPORA`; ``"fortunes"`` and ``"manpages"`` are
        ``../shared/data/<corpus>_minilm.npz``.
    label : str
        Key of the labels: ``"y"`` (fortune file, man page) or ``"section"``
        (man pages only).

    Returns
    -------
    X_db, y_db, X_q, y_q : ndarrays
    """
    if n_queries is None:
        n_queries = N_QUERIES.get(corpus, 2000)
    X, y = load_corpus(corpus, label)
    order = np.random.default_rng(seed).permutation(len(X))
    q, db = order[:n_queries], order[n_queries:][:n_database]
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


def expected_distinct(n, n_bits):
    """Expected number of distinct codes among n uniform random codes."""
    if n_bits > 60:  # 2**n_bits overflows floats long before collisions become likely
        return n - n * (n - 1) / 2 * 2.0 ** -min(n_bits, 1000)
    m = 2.0**n_bits
    return m * -np.expm1(n * np.log1p(-1 / m))


def code_figures(codes, n_triples=20000, seed=0):
    """Balance, pairwise and triple dependence, and distinctness of 0/1 codes."""
    n, b = codes.shape
    s = codes.astype(np.float64) * 2 - 1
    ones = codes.mean(0)
    corr = np.corrcoef(s, rowvar=False) if b > 1 else np.zeros((1, 1))
    np.fill_diagonal(corr, 0)
    triple = 0.0
    if b >= 3:
        rng = np.random.default_rng(seed)
        idx = np.array([rng.choice(b, 3, replace=False) for _ in range(min(n_triples, 5000))])
        prod = s[:, idx[:, 0]] * s[:, idx[:, 1]]
        third = s[:, idx[:, 2]]
        pc = prod - prod.mean(0)
        tc = third - third.mean(0)
        denom = np.sqrt((pc**2).sum(0) * (tc**2).sum(0))
        triple = float(np.max(np.abs((pc * tc).sum(0)) / np.maximum(denom, 1e-12)))
    distinct = len(np.unique(np.packbits(codes, axis=1), axis=0))
    return {
        "max_corr": float(np.nanmax(np.abs(corr))),
        "triple_corr": triple,
        "distinct_ratio": distinct / expected_distinct(n, b),
        "ones_min": float(ones.min()),
        "ones_max": float(ones.max()),
    }


# Baselines ------------------------------------------------------------------


class Sign:
    """Sign-binarise the raw embedding (what sentence-transformers' binary quantisation does)."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return (X > 0).astype(np.uint8)


def encoders(n_bits, seed, **encoder_params):
    """skhash's encoder and the baselines it is compared with, default settings.

    ``encoder_params`` go to :class:`~skhash.BinaryHashEncoder` only (e.g.
    ``max_epochs`` of a smoke run).
    """
    from skhash import PCAITQ, BinaryHashEncoder, SimHash

    return {
        "skhash": BinaryHashEncoder(n_bits=n_bits, random_state=seed, **encoder_params),
        "PCA-ITQ": PCAITQ(n_bits=n_bits, random_state=seed),
        "SimHash": SimHash(n_bits=n_bits, random_state=seed),
    }


# Memory ---------------------------------------------------------------------


def held_bytes(obj):
    """Bytes of the arrays held as attributes of ``obj`` (private ones too: a search
    keeps some there), each block of memory once (views of another array are free)."""
    arrays = sorted(
        (value for value in vars(obj).values() if isinstance(value, np.ndarray)),
        key=lambda array: -array.nbytes,
    )
    kept = []
    for array in arrays:
        if not any(np.shares_memory(array, other) for other in kept):
            kept.append(array)
    return sum(array.nbytes for array in kept)


# Timing and disturbance -----------------------------------------------------


def timed(fn):
    """(seconds, result) of one call of ``fn()``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(fn, repeat=3):
    """(seconds of the fastest of ``repeat`` calls, last result): the least disturbed call."""
    times, result = [], None
    for _ in range(repeat):
        elapsed, result = timed(fn)
        times.append(elapsed)
    return min(times), result


def _cpu_counters():
    """(busy seconds of all cores, seconds of this process and its children), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(value) for value in f.readline().split()[1:]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    own = os.times()
    return busy / ticks, own.user + own.system + own.children_user + own.children_system


class Disturbance:
    """Share of the machine's CPU used by *other* processes while a block ran (``share``)."""

    def __enter__(self):
        self.start = _cpu_counters()
        self.wall = time.perf_counter()
        return self

    def __exit__(self, *exc):
        end = _cpu_counters()
        wall = time.perf_counter() - self.wall
        if self.start is None or end is None or wall <= 0:
            self.share = float("nan")
        else:
            others = (end[0] - self.start[0]) - (end[1] - self.start[1])
            self.share = max(0.0, others / (wall * os.cpu_count()))


def wait_idle(max_seconds, threshold=0.9, window=5.0):
    """Wait until the CPU is at least ``threshold`` idle over ``window`` seconds."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        with Disturbance() as sample:
            time.sleep(window)
        if 1 - sample.share >= threshold:
            return True
        print(f"  waiting: other processes use {sample.share:.0%} of the CPU", flush=True)
    return False


# Machine line ---------------------------------------------------------------


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def versions(extra=()):
    """Versions of skhash and the libraries the benchmarks measure.

    skhash's is that of the package imported (``skhash.__version__``): an editable
    install's metadata keeps the version it was installed at, and ``PYTHONPATH`` may
    point at another checkout.
    """
    import skhash

    found = {"skhash": skhash.__version__}
    for name in (*VERSIONED, *extra):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine_line(threads=None, extra=()):
    """One line: CPU, cores, threads, load, time, Python and library versions."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    used = f", {threads} threads used" if threads else ""
    libraries = ", ".join(f"{key} {value}" for key, value in versions(extra).items())
    return (
        f"Machine: {cpu_model()}, {os.cpu_count()} logical cores{used}; load average "
        f"{load:.2f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"Python {platform.python_version()}, {libraries}"
    )


def machine_title(threads):
    """Short machine description for figure titles (measured, not hard-coded)."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {threads} thread" + "s" * (threads > 1)


# Arguments and tables -------------------------------------------------------


def parse_args(parser, quick, argv=None):
    """Parse ``argv`` with a ``--quick`` flag that makes ``quick`` the defaults.

    Options given explicitly still win over the quick defaults.
    """
    described = ", ".join(f"--{key.replace('_', '-')} {value}" for key, value in quick.items())
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run, tiny sizes ({described})"
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--quick" in argv:
        parser.set_defaults(**quick)
    return parser.parse_args(argv)


def print_header(*columns, left=None):
    """Markdown table header; with ``left``, the columns after the first ``left`` align right."""
    n_left = len(columns) if left is None else left
    aligns = ["---"] * n_left + ["---:"] * (len(columns) - n_left)
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join(aligns) + "|", flush=True)


def print_row(*cells):
    """One markdown table row, flushed (long runs print rows as they come)."""
    print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)


def print_command():
    """The command line that produced the output, to paste next to a table."""
    print("\nCommand: python " + " ".join(shlex.quote(arg) for arg in sys.argv), flush=True)
