"""Export packed binary codes to faiss and to PostgreSQL + pgvector.

Bit order
---------
skhash stores a code as ``np.packbits(bits, axis=1)`` rows: bit ``j`` of a code
is bit ``7 - j % 8`` (most significant first) of byte ``j // 8``, and the unused
bits of the last byte are zero.

- **PostgreSQL** ``bit(n)`` strings use the same order: the text form of a code
  is ``"".join(map(str, bits))``, so a code whose only set bit is bit 3 reads
  ``'0001000...'``. Codes are written with the binary ``COPY`` format, whose
  payload for ``bit(n)`` is exactly the ``np.packbits`` bytes.
- **faiss** binary indexes take the same packed bytes (``d = 8 * n_bytes``) and
  count differing bits of whole bytes, so they never look at the order of bits
  inside a byte. faiss' own float-to-bits helpers (``fvecs2bitvecs``) pack
  least significant bit first, the reverse of ``np.packbits``: a per-byte bit
  permutation applied to both sides leaves every Hamming distance unchanged,
  but queries must be packed the same way as the stored codes, i.e. with
  ``np.packbits`` (never mix the two packers).
"""

# Authors: The skhash developers
# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import math
import numbers

import numpy as np

from ._index import _as_ids, _unit_rows
from ._validation import Interval, Options, validate_params

__all__ = ["pgvector_kneighbors", "to_faiss", "to_pgvector"]

# pgvector limits (pgvector 0.8: hnsw.c, halfvec.c)
_HNSW_MAX_BITS = 64_000
_HALFVEC_MAX_DIM = 16_000
_PG_MAX_IDENTIFIER = 63
# rows per COPY block (bounds the memory of the serialised rows)
_COPY_BATCH_ROWS = 65_536


# --------------------------------------------------------------------------- inputs


def _check_n_bits(n_bits):
    if not isinstance(n_bits, numbers.Integral) or isinstance(n_bits, bool) or n_bits < 1:
        raise ValueError(f"n_bits must be a positive int, got {n_bits!r}.")
    return int(n_bits)


def _check_codes(codes, n_bits, name="codes", allow_empty=False):
    """Packed uint8 codes of ``n_bits`` bits: shape, dtype and zero padding."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise ValueError(
            f"{name} must be packed uint8 codes (np.packbits(bits, axis=1)), got dtype "
            f"{codes.dtype}."
        )
    if codes.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_codes, n_bytes), got shape {codes.shape}.")
    n_bytes = -(-n_bits // 8)
    if codes.shape[1] != n_bytes:
        raise ValueError(
            f"{name} have {codes.shape[1]} bytes per row, but n_bits={n_bits} packs into "
            f"{n_bytes} bytes."
        )
    if codes.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: at least one code is needed.")
    n_pad = 8 * n_bytes - n_bits
    if n_pad and np.any(codes[:, -1] & np.uint8((1 << n_pad) - 1)):
        raise ValueError(
            f"{name} have set bits beyond n_bits={n_bits} in their last byte (the padding "
            "of np.packbits is zero); wrong n_bits?"
        )
    return np.ascontiguousarray(codes)


def _check_ids(ids, n_codes):
    """Unique int64 ids (PostgreSQL bigint, faiss idx_t), one per code, as ``HashIndex`` has."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.shape[0] != n_codes:
        raise ValueError(f"ids must be 1-D with one id per code ({n_codes}), got {ids.shape}.")
    if ids.size == 0:  # np.asarray([]) is float64
        return ids.astype(np.int64)
    try:
        return _as_ids(ids, n_codes)
    except TypeError as error:  # this module's errors have always been ValueErrors
        raise ValueError(str(error)) from None


def _check_vectors(vectors, n_rows, name="vectors"):
    """Rescoring vectors as unit rows in float16 (halfvec); finite; zero rows stay zero."""
    vectors = np.asarray(vectors)
    if vectors.dtype.kind != "f" and vectors.dtype != np.int8:
        raise ValueError(f"{name} must be float or int8, got dtype {vectors.dtype}.")
    if vectors.ndim != 2 or vectors.shape[0] != n_rows or vectors.shape[1] == 0:
        raise ValueError(f"{name} must have shape ({n_rows}, n_dims), got {vectors.shape}.")
    if vectors.shape[1] > _HALFVEC_MAX_DIM:
        raise ValueError(
            f"{name} have {vectors.shape[1]} dims; halfvec allows {_HALFVEC_MAX_DIM}."
        )
    if not np.all(np.isfinite(vectors)):
        raise ValueError(f"{name} contain NaN or infinity.")
    # unit rows before float16: cosine does not depend on scale, and neither large rows
    # (beyond float16) nor small ones (float16's coarse subnormals) lose anything
    return _unit_rows(vectors, np.float64).astype(np.float16)


def _check_query_vectors(vectors, n_rows):
    vectors = np.asarray(vectors)
    if vectors.dtype.kind not in "fiu":
        raise ValueError(f"query_vectors must be numeric, got dtype {vectors.dtype}.")
    if vectors.ndim != 2 or vectors.shape[0] != n_rows or vectors.shape[1] == 0:
        raise ValueError(
            f"query_vectors must have shape ({n_rows}, n_dims), one per query code, "
            f"got {vectors.shape}."
        )
    vectors = vectors.astype(np.float64)
    if not np.all(np.isfinite(vectors)) or np.any(np.abs(vectors) > np.finfo(np.float32).max):
        raise ValueError("query_vectors contain NaN, infinity or values beyond float32.")
    return _unit_rows(vectors, np.float64).astype(np.float32)


def _bit_string(code, n_bits):
    """Text form of one packed code for PostgreSQL ``bit(n)`` (MSB first)."""
    return (np.unpackbits(code, count=n_bits) + ord("0")).tobytes().decode("ascii")


def _vector_text(vector):
    """Text form of a pgvector ``vector`` (shortest float32 round trip)."""
    return "[" + ",".join(repr(float(v)) for v in vector.astype(np.float32)) + "]"


# --------------------------------------------------------------------------- faiss


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_faiss requires faiss: pip install skhash[faiss] (installs faiss-cpu)."
        ) from exc
    return faiss


def to_faiss(codes, ids, n_bits, *, kind="flat", M=32, ef_search=None):
    """Build a faiss binary index over packed codes, keeping their int64 ids.

    Parameters
    ----------
    codes : ndarray of shape (n_codes, ceil(n_bits / 8)), dtype uint8
        Codes packed with ``np.packbits(bits, axis=1)`` (zero padding).
    ids : array-like of shape (n_codes,), int
        Unique int64 ids returned by ``search`` in place of row numbers.
    n_bits : int
        Code length in bits. faiss binary indexes count whole bytes, so the
        index has ``d = 8 * ceil(n_bits / 8)``; the zero padding of codes and
        queries adds nothing to a distance.
    kind : {"flat", "hnsw"}, default="flat"
        ``"flat"``: ``IndexBinaryFlat``, exact. ``"hnsw"``: ``IndexBinaryHNSW``,
        approximate graph search.
    M : int, default=32
        Neighbours per node of the HNSW graph (``kind="hnsw"``).
    ef_search : int or None, default=None
        Beam width of the HNSW search (``hnsw.efSearch``); None
        keeps faiss' default (16). Raise it for recall, at least to ``k``.

    Returns
    -------
    index : faiss.IndexBinaryIDMap2
        Wraps the flat or HNSW index (``faiss.downcast_IndexBinary(index.index)``,
        e.g. to change ``hnsw.efSearch`` later); ``index.search(q, k)`` takes
        queries packed with ``np.packbits`` and returns ``(distances int32,
        ids int64)``. Save it with ``faiss.write_index_binary``.

    Notes
    -----
    The flat index returns exact Hamming distances, but faiss does not order
    neighbours at equal distance by id: the ids at the k-th distance may be
    any of the tied ones (skhash's exact kernels break ties by id). Bit order:
    see the module docstring; queries must be packed with ``np.packbits``.
    The returned object is faiss's own: asked for more neighbours than it
    holds, it pads the answer with id -1 (where :class:`~skhash.HashIndex`
    raises), and the HNSW index cannot ``remove_ids``.
    """
    validate_params(
        {
            "kind": [Options(str, {"flat", "hnsw"})],
            "M": [Interval(numbers.Integral, 2, None, closed="left")],
            "ef_search": [None, Interval(numbers.Integral, 1, None, closed="left")],
        },
        "to_faiss",
        kind=kind,
        M=M,
        ef_search=ef_search,
    )
    n_bits = _check_n_bits(n_bits)
    codes = _check_codes(codes, n_bits, allow_empty=True)  # an emptied index exports empty
    ids = _check_ids(ids, codes.shape[0])
    faiss = _import_faiss()
    d = 8 * codes.shape[1]
    if kind == "flat":
        base = faiss.IndexBinaryFlat(d)
    else:
        base = faiss.IndexBinaryHNSW(d, int(M))
        if ef_search is not None:
            base.hnsw.efSearch = int(ef_search)
    # faiss' Python wrapper keeps ``base`` alive as long as ``index``
    index = faiss.IndexBinaryIDMap2(base)
    if codes.shape[0]:
        index.add_with_ids(codes, ids)
    return index


# --------------------------------------------------------------------------- PostgreSQL


def _import_psycopg():
    try:
        import psycopg
        from psycopg import sql
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_pgvector requires psycopg 3: pip install skhash[pg] (psycopg, pgvector)."
        ) from exc
    return psycopg, sql


def _check_connection(connection, psycopg, caller):
    if not isinstance(connection, psycopg.Connection):
        raise TypeError(
            f"{caller} needs a psycopg 3 connection (psycopg.connect(uri)), got "
            f"{type(connection).__name__}."
        )
    if connection.closed:
        raise ValueError(f"{caller}: the connection is closed.")
    if connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        raise ValueError(
            f"{caller}: the connection is in a failed transaction; roll it back first."
        )


def _table_identifier(table, sql):
    """``table`` (a name, or a (schema, name) tuple) as a quoted identifier."""
    parts = (table,) if isinstance(table, str) else table
    if not isinstance(parts, tuple) or not 1 <= len(parts) <= 2:
        raise ValueError(f"table must be a name or a (schema, name) tuple, got {table!r}.")
    for part in parts:
        if not isinstance(part, str) or not part or "\x00" in part:
            raise ValueError(f"table names must be non-empty strings, got {table!r}.")
        # PostgreSQL silently truncates longer names: refuse instead
        if len(part.encode()) > _PG_MAX_IDENTIFIER:
            raise ValueError(
                f"table name {part!r} is longer than PostgreSQL's {_PG_MAX_IDENTIFIER} bytes."
            )
    return sql.Identifier(*parts)


def _columns(cursor, table_ident):
    """Column name -> SQL type of an existing table, or None if there is none."""
    regclass = table_ident.as_string(cursor.connection)
    cursor.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        (regclass,),
    )
    rows = cursor.fetchall()
    if not rows:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (regclass,))
        return {} if cursor.fetchone()[0] else None
    return dict(rows)


def _qualified_name(cursor, table_ident, sql):
    """``schema.name`` of the existing table that ``table_ident`` resolves to."""
    cursor.execute(
        "SELECT n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (table_ident.as_string(cursor.connection),),
    )
    return sql.Identifier(*cursor.fetchone())


def _pgvector_version(cursor, caller):
    cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    row = cursor.fetchone()
    if row is None:
        raise ValueError(
            f"{caller}: the pgvector extension is not installed in this database "
            "(run CREATE EXTENSION vector)."
        )
    return tuple(int(p) for p in row[0].split(".")[:2])


def _copy_block(ids, codes, n_bits, vectors, *, header, trailer):
    """Rows in PostgreSQL's binary COPY format, serialised with one numpy record.

    Per row: field count (int16), then per field its length (int32) and its
    binary ``recv`` payload: ``bigint`` big-endian int64; ``bit(n)`` the bit
    count (int32) and the ``np.packbits`` bytes; ``halfvec`` the dimension
    (int16), a zero (int16) and big-endian float16 values.
    """
    n_bytes = codes.shape[1]
    fields = [
        ("n_fields", ">i2"),
        ("id_size", ">i4"),
        ("id", ">i8"),
        ("code_size", ">i4"),
        ("code_bits", ">i4"),
        ("code", "u1", (n_bytes,)),
    ]
    if vectors is not None:
        n_dims = vectors.shape[1]
        fields += [
            ("vec_size", ">i4"),
            ("vec_dim", ">i2"),
            ("vec_unused", ">i2"),
            ("vec", ">f2", (n_dims,)),
        ]
    rows = np.empty(ids.shape[0], dtype=np.dtype(fields))
    rows["n_fields"] = 2 if vectors is None else 3
    rows["id_size"] = 8
    rows["id"] = ids
    rows["code_size"] = 4 + n_bytes
    rows["code_bits"] = n_bits
    rows["code"] = codes
    if vectors is not None:
        rows["vec_size"] = 4 + 2 * n_dims
        rows["vec_dim"] = n_dims
        rows["vec_unused"] = 0
        rows["vec"] = vectors
    data = rows.tobytes()
    if header:  # signature, flags, header extension length
        data = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + data
    if trailer:
        data += b"\xff\xff"
    return data


def _add_note(exc, note):
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(note)


def to_pgvector(
    connection,
    table,
    *,
    codes,
    ids,
    n_bits,
    vectors=None,
    hnsw=True,
    m=16,
    ef_construction=64,
    if_exists="fail",
):
    """Write codes (and rescoring vectors) to a PostgreSQL + pgvector table.

    The table is::

        CREATE TABLE <table> (
            id bigint PRIMARY KEY,
            code bit(<n_bits>) NOT NULL,
            embedding halfvec(<n_dims>) NOT NULL   -- only with vectors
        );
        CREATE INDEX ON <table> USING hnsw (code bit_hamming_ops)
            WITH (m = <m>, ef_construction = <ef_construction>);  -- hnsw=True

    Rows are loaded with one binary ``COPY``, sent in blocks of 65,536 rows. All
    of it runs in one transaction (a savepoint when ``connection`` is already in
    one): any error — a duplicate id, a dropped connection, a bad value —
    rolls everything back and leaves the database as it was.

    Parameters
    ----------
    connection : psycopg.Connection
        A psycopg 3 connection to a database with the ``vector`` extension.
        Its settings are not changed; no adapter is registered on it.
    table : str or tuple of (str, str)
        Table name, or ``(schema, name)``; quoted as an identifier, so it is
        taken literally (case and dots included).
    codes : ndarray of shape (n_codes, ceil(n_bits / 8)), dtype uint8
        Codes packed with ``np.packbits(bits, axis=1)``: pgvector's bit strings
        use the same order (most significant bit of each byte first), so bit
        ``j`` of a code is character ``j`` of its ``code::text``.
    ids : array-like of shape (n_codes,), int
        Unique int64 ids (``bigint`` primary key).
    n_bits : int
        Code length; the column type is ``bit(n_bits)`` (HNSW: up to 64,000).
    vectors : ndarray of shape (n_codes, n_dims) or None, default=None
        Rescoring vectors (float or int8, finite), stored as unit rows in
        ``halfvec`` (float16): cosine does not depend on scale, and neither
        large nor tiny rows lose precision in float16. An all-zero row stays
        zero: :func:`pgvector_kneighbors` puts it at cosine distance 1 from every
        query, as :class:`~skhash.HashIndex` does.
    hnsw : bool, default=True
        Build the HNSW index on ``code`` (``bit_hamming_ops``) after loading.
    m, ef_construction : int, default=16, 64
        HNSW build parameters (pgvector: ``2 <= m <= 100``,
        ``ef_construction >= 2 * m``, at most 1000).
    if_exists : {"fail", "replace", "append"}, default="fail"
        What to do when the table exists: raise, drop and recreate it (inside
        the same transaction), or insert into it (its ``code`` type and columns
        must match; its indexes are kept and updated by PostgreSQL).

    Returns
    -------
    n_rows : int
        Number of rows written.
    """
    validate_params(
        {
            "hnsw": ["boolean"],
            "m": [Interval(numbers.Integral, 2, 100, closed="both")],
            "ef_construction": [Interval(numbers.Integral, 4, 1000, closed="both")],
            "if_exists": [Options(str, {"fail", "replace", "append"})],
        },
        "to_pgvector",
        hnsw=hnsw,
        m=m,
        ef_construction=ef_construction,
        if_exists=if_exists,
    )
    if ef_construction < 2 * m:
        raise ValueError(
            f"ef_construction must be at least 2 * m = {2 * m} (pgvector), got {ef_construction}."
        )
    n_bits = _check_n_bits(n_bits)
    if hnsw and n_bits > _HNSW_MAX_BITS:
        raise ValueError(
            f"pgvector's HNSW indexes bit(n) up to n={_HNSW_MAX_BITS}; pass hnsw=False."
        )
    codes = _check_codes(codes, n_bits, allow_empty=True)  # an empty table, or append nothing
    ids = _check_ids(ids, codes.shape[0])
    if vectors is not None:
        vectors = _check_vectors(vectors, codes.shape[0])
    psycopg, sql = _import_psycopg()
    _check_connection(connection, psycopg, "to_pgvector")
    ident = _table_identifier(table, sql)

    columns = [sql.SQL("id bigint PRIMARY KEY"), sql.SQL(f"code bit({n_bits}) NOT NULL")]
    names = [sql.Identifier("id"), sql.Identifier("code")]
    if vectors is not None:
        columns.append(sql.SQL(f"embedding halfvec({vectors.shape[1]}) NOT NULL"))
        names.append(sql.Identifier("embedding"))
    try:
        with connection.transaction(), connection.cursor() as cur:
            _pgvector_version(cur, "to_pgvector")
            existing = _columns(cur, ident)
            if existing is not None:
                # the table found on the search path, by its schema: replacing it must not
                # create the new one in another schema that comes first on the path
                ident = _qualified_name(cur, ident, sql)
            if existing is not None and if_exists == "fail":
                raise ValueError(f"table {table!r} exists; pass if_exists='replace' or 'append'.")
            if existing is not None and if_exists == "append":
                _check_append(existing, table, n_bits, vectors)
            else:
                if existing is not None:
                    cur.execute(sql.SQL("DROP TABLE {}").format(ident))
                cur.execute(
                    sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(columns))
                )
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                ident, sql.SQL(", ").join(names)
            )
            n = codes.shape[0]
            with cur.copy(copy_sql) if n else contextlib.nullcontext() as copy:
                for start in range(0, n, _COPY_BATCH_ROWS):
                    stop = min(start + _COPY_BATCH_ROWS, n)
                    copy.write(
                        _copy_block(
                            ids[start:stop],
                            codes[start:stop],
                            n_bits,
                            None if vectors is None else vectors[start:stop],
                            header=start == 0,
                            trailer=stop == n,
                        )
                    )
            if hnsw and not (existing is not None and if_exists == "append"):
                cur.execute(
                    sql.SQL(
                        "CREATE INDEX ON {} USING hnsw (code bit_hamming_ops) "
                        f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
                    ).format(ident)
                )
            cur.execute(sql.SQL("ANALYZE {}").format(ident))
    except psycopg.Error as exc:
        _add_note(
            exc,
            f"to_pgvector: writing table {table!r} failed; the transaction was rolled back "
            "and nothing was written.",
        )
        raise
    return int(codes.shape[0])


def _check_append(existing, table, n_bits, vectors):
    expected = {"id": "bigint", "code": f"bit({n_bits})"}
    if vectors is not None:
        expected["embedding"] = f"halfvec({vectors.shape[1]})"
    for name, sql_type in expected.items():
        if existing.get(name) != sql_type:
            raise ValueError(
                f"cannot append to table {table!r}: column {name!r} is "
                f"{existing.get(name)!r}, expected {sql_type!r}."
            )
    if vectors is None and "embedding" in existing:
        raise ValueError(f"table {table!r} has an embedding column: pass vectors to append.")


def _candidates_sql(sql, ident, n_bits, *, exact, rescore):
    """The query documented in :func:`pgvector_kneighbors` (parameters by name)."""
    code = sql.SQL(f"code <~> %(code)s::bit({n_bits})")
    # exact: ties by id inside the candidate set; approximate: a single ORDER BY
    # key, the form pgvector's HNSW index scan serves
    order = sql.SQL("hamming, id") if exact else code
    if not rescore:
        return sql.SQL(
            "WITH candidates AS MATERIALIZED (\n"
            "    SELECT id, {code} AS hamming FROM {table}\n"
            "    ORDER BY {order} LIMIT %(n_candidates)s\n"
            ")\n"
            "SELECT id, hamming FROM candidates\n"
            "ORDER BY hamming, id LIMIT %(n_neighbors)s"
        ).format(code=code, table=ident, order=order)
    return sql.SQL(
        "WITH candidates AS MATERIALIZED (\n"
        "    SELECT id, embedding, {code} AS hamming FROM {table}\n"
        "    ORDER BY {order} LIMIT %(n_candidates)s\n"
        ")\n"
        "SELECT id, COALESCE(NULLIF(embedding::vector <=> %(vector)s::vector, 'NaN'), 1)\n"
        "    AS distance FROM candidates\n"
        "ORDER BY distance, id LIMIT %(n_neighbors)s"
    ).format(code=code, table=ident, order=order)


def pgvector_kneighbors(
    connection,
    table,
    *,
    query_codes,
    n_bits,
    n_neighbors=10,
    query_vectors=None,
    n_candidates=None,
    exact=True,
):
    """Nearest neighbours from a table written by :func:`to_pgvector`, in SQL.

    One query per row of ``query_codes``: Hamming candidates with pgvector's
    ``<~>``, then (with ``query_vectors``) cosine rescoring of the candidates
    with ``<=>``. The SQL, runnable as is (psql: replace the parameters)::

        WITH candidates AS MATERIALIZED (
            SELECT id, embedding, code <~> %(code)s::bit(64) AS hamming FROM items
            ORDER BY hamming, id            -- approximate: code <~> %(code)s::bit(64)
            LIMIT %(n_candidates)s
        )
        SELECT id, COALESCE(NULLIF(embedding::vector <=> %(vector)s::vector, 'NaN'), 1)
            AS distance                     -- an all-zero row or query: 1, as in HashIndex
        FROM candidates
        ORDER BY distance, id LIMIT %(n_neighbors)s;

    ``code`` is the query's bit string (``'0110...'``, most significant bit of
    each ``np.packbits`` byte first) and ``vector`` its float vector as text
    (``'[0.1,0.2,...]'``). Without rescoring the outer query is
    ``SELECT id, hamming FROM candidates ORDER BY hamming, id LIMIT ...``.

    Parameters
    ----------
    connection : psycopg.Connection
        psycopg 3 connection. The queries run in a transaction (a savepoint
        inside an open one) that is rolled back at the end, so the settings
        below stay local to it.
    table : str or tuple of (str, str)
        The table (or ``(schema, name)``).
    query_codes : ndarray of shape (n_queries, ceil(n_bits / 8)), dtype uint8
        Query codes packed with ``np.packbits``.
    n_bits : int
        Code length; must match the table's ``bit(n)`` column.
    n_neighbors : int, default=10
        Neighbours per query.
    query_vectors : ndarray of shape (n_queries, n_dims) or None, default=None
        Float query vectors for rescoring against the ``embedding`` column
        (``halfvec`` cast to ``vector``, float32 arithmetic in pgvector).
    n_candidates : float or None, default=None
        Oversampling: ``ceil(n_candidates * n_neighbors)`` Hamming candidates
        (the convention of sentence-transformers' ``rescore_multiplier`` and
        Qdrant's ``oversampling``), at least 1. None: 1 without
        ``query_vectors`` (plain Hamming top-k), 10 with them.
    exact : bool, default=True
        True: candidates by a sequential scan (``enable_indexscan`` off for
        the transaction), ordered by (Hamming distance, id) — the same
        candidates as skhash's exact kernels. False: the HNSW index
        (``hnsw.ef_search`` set to ``max(40, ceil(n_candidates * n_neighbors))``,
        up to 1000, and
        ``hnsw.iterative_scan = strict_order`` on pgvector >= 0.8 so the scan
        returns as many rows as asked), approximate. On heavily tied codes
        the HNSW graph can miss even exact matches (pgvector issue #972):
        use ``exact=True`` there.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        Hamming distances (int32) without ``query_vectors``; cosine distances
        (float64, as pgvector computes them; 1 for an all-zero row or query)
        with them. Ascending, ties by id. Against :class:`~skhash.HashIndex`'s
        rescoring they differ by float16 rounding (about 1e-4), and with its
        int8 vectors by their quantisation (up to ~2e-3: ``HashIndex`` scores
        the quantised row, pgvector the float16 copy of it), so near-ties can
        come out in another order.
    ids : ndarray of shape (n_queries, n_neighbors), dtype int64
    """
    validate_params(
        {
            "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
            "n_candidates": [None, Interval(numbers.Real, 1, None, closed="left")],
            "exact": ["boolean"],
        },
        "pgvector_kneighbors",
        n_neighbors=n_neighbors,
        n_candidates=n_candidates,
        exact=exact,
    )
    n_bits = _check_n_bits(n_bits)
    query_codes = _check_codes(query_codes, n_bits, name="query_codes")
    n_queries = query_codes.shape[0]
    rescore = query_vectors is not None
    if rescore:
        query_vectors = _check_query_vectors(query_vectors, n_queries)
    if n_candidates is None:
        n_candidates = 10 if rescore else 1
    n_cand = max(int(n_neighbors), math.ceil(float(n_candidates) * int(n_neighbors)))
    psycopg, sql = _import_psycopg()
    _check_connection(connection, psycopg, "pgvector_kneighbors")
    ident = _table_identifier(table, sql)
    # the query takes %(...)s parameters: a % in the quoted name must reach PostgreSQL as is
    literal = sql.SQL(ident.as_string(connection).replace("%", "%%"))
    query = _candidates_sql(sql, literal, n_bits, exact=exact, rescore=rescore)

    distances = np.empty((n_queries, n_neighbors), dtype=np.float64 if rescore else np.int32)
    ids = np.empty((n_queries, n_neighbors), dtype=np.int64)
    # rolled back at the end: the SET LOCALs below never outlive the call
    with connection.transaction(force_rollback=True), connection.cursor() as cur:
        version = _pgvector_version(cur, "pgvector_kneighbors")
        existing = _columns(cur, ident)
        if existing is None:
            raise ValueError(f"table {table!r} does not exist.")
        if existing.get("code") != f"bit({n_bits})":
            raise ValueError(
                f"table {table!r} has code {existing.get('code')!r}, not bit({n_bits}): "
                "n_bits does not match."
            )
        if rescore and existing.get("embedding") != f"halfvec({query_vectors.shape[1]})":
            raise ValueError(
                f"table {table!r} has embedding {existing.get('embedding')!r}; query_vectors "
                f"have {query_vectors.shape[1]} dims."
            )
        if exact:
            cur.execute("SELECT set_config('enable_indexscan', 'off', true)")
        else:
            # only the index can serve the approximate query
            cur.execute("SELECT set_config('enable_seqscan', 'off', true)")
            cur.execute(
                "SELECT set_config('hnsw.ef_search', %s, true)", (str(min(max(40, n_cand), 1000)),)
            )
            if version >= (0, 8):
                cur.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")
        params = {"n_candidates": n_cand, "n_neighbors": int(n_neighbors)}
        for i in range(n_queries):
            params["code"] = _bit_string(query_codes[i], n_bits)
            if rescore:
                params["vector"] = _vector_text(query_vectors[i])
            cur.execute(query, params, prepare=True)
            rows = cur.fetchall()
            if len(rows) < n_neighbors:
                raise ValueError(
                    f"table {table!r} returned {len(rows)} rows for query {i}, fewer than "
                    f"n_neighbors={n_neighbors}."
                )
            ids[i] = [r[0] for r in rows]
            distances[i] = [r[1] for r in rows]
    return distances, ids
