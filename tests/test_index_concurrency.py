"""HashIndex under concurrent use: queries in threads while add/remove/save run (Atomic)."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator

from skhash import HashIndex

N_BASE, BATCH, N_BATCHES = 400, 40, 4


def _states(index, X, Q):
    """Ids and answers of every state the writer below goes through, in order."""
    states = []
    for j in range(N_BATCHES + 1):
        states.append((index.ids_.copy(), index.kneighbors(Q, 10)))
        if j < N_BATCHES:
            rows = np.arange(N_BASE + BATCH * j, N_BASE + BATCH * (j + 1))
            index.add(X[rows], ids=rows)
    index.remove(np.arange(N_BASE, N_BASE + BATCH * N_BATCHES))
    return states


def _which(answer, states):
    """The state whose answer ``answer`` is, or None."""
    for i, (_, expected) in enumerate(states):
        if all(np.array_equal(a, b) for a, b in zip(answer, expected, strict=True)):
            return i
    return None


@pytest.mark.parametrize("rescore, asymmetric", [("float16", False), (None, True), (None, False)])
def test_queries_in_threads_see_whole_states_while_writing_and_saving(
    fitted, digits, tmp_path, rescore, asymmetric
):
    X, _ = digits
    Q = X[1700:1730]
    index = HashIndex(
        encoder=FrozenEstimator(fitted), rescore=rescore, asymmetric=asymmetric, n_candidates=3
    ).fit(X[:N_BASE])
    states = _states(index, X, Q)
    stop = threading.Event()
    errors, seen, saved = [], [], []

    def writer():
        try:
            while not stop.is_set():
                for j in range(N_BATCHES):  # appends into the vectors' spare rows
                    rows = np.arange(N_BASE + BATCH * j, N_BASE + BATCH * (j + 1))
                    index.add(X[rows], ids=rows)
                index.remove(np.arange(N_BASE, N_BASE + BATCH * N_BATCHES))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader():
        try:
            for _ in range(12):
                answer = index.kneighbors(Q, 10)
                seen.append(_which(answer, states))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def saver():
        try:
            for i in range(3):
                index.save(tmp_path / f"index{i}")
                loaded = HashIndex.load(tmp_path / f"index{i}")
                same = [j for j, (ids, _) in enumerate(states) if np.array_equal(loaded.ids_, ids)]
                saved.append(same and _which(loaded.kneighbors(Q, 10), states) == same[0])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads.append(threading.Thread(target=saver))
    write = threading.Thread(target=writer)
    write.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    write.join()
    assert not errors, errors
    # every answer is one state's whole answer (ids indexed, none twice, their distances)
    assert len(seen) == 48 and None not in seen
    assert saved == [True] * 3
    assert index.ids_.tolist() == states[0][0].tolist()


def test_queries_in_threads_under_numbas_workqueue_layer(tmp_path):
    """numba's workqueue layer (no OpenMP, no TBB) aborts the process on concurrent
    parallel launches: queries from several threads take turns there."""
    script = tmp_path / "queries.py"
    script.write_text(
        textwrap.dedent(
            """
            import threading
            import numba
            import numpy as np
            from skhash import HashIndex, SimHash

            X = np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float32)
            index = HashIndex(encoder=SimHash(n_bits=32, random_state=0)).fit(X)
            expected = index.kneighbors(X[:20], 5)

            def query():
                for _ in range(100):
                    got = index.kneighbors(X[:20], 5)
                    assert all(np.array_equal(a, b) for a, b in zip(got, expected))

            threads = [threading.Thread(target=query) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print(numba.threading_layer())
            """
        )
    )
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["workqueue"]
