"""The documentation's Python code runs as written: each page's blocks, in order, in one process.

Which blocks run:

- Markdown (MyST) pages: every fence opened with ```python. Fences in another language
  (```text, ```sql, ```console) or in none (a bare ```: shell commands, file trees) are
  not Python and are not run.
- reStructuredText pages: every ``.. code-block:: python`` and every ``::`` literal
  block, which Sphinx highlights as Python; a literal block that is not Python gets
  another language (``.. code-block:: shell``).
- A Python block that cannot run in the test suite is marked by a comment after the
  previous block and before it: ``% not run: <why>`` in Markdown, ``.. not run: <why>`` in
  reStructuredText (comments: neither renders). It is still compiled, and its imports
  must resolve, so that a renamed function still fails here.
- ``>>>`` (doctest) blocks are refused until the test knows how to run them.

The blocks of a page run one after the other in one process, in a fresh directory, so a
block may use the names of the blocks before it, as a reader who pastes them would. Two
things differ from a reader's run, both for time (the suite runs on two cores):

- training is capped at two passes over the rows where ``max_steps="auto"`` (the default),
  by a patch of ``BinaryHashEncoder._auto_epochs`` run before the page; an explicit
  ``max_steps`` is kept. The README test (``tests/test_examples.py``) trains fully.
- the placeholder ``"postgresql://..."`` is replaced by the address of a throwaway database
  on the session's pgvector server (``conftest.pg_server``).

Each page then runs the checks in ``CHECKS``: the shapes, orders and values its comments
and prose claim. The ``verbose=1`` log that getting_started.rst shows is compared, column
by column but for the time, with the log of the fit its prose names, trained in full.
"""

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import run_script

DOCS = Path(__file__).resolve().parents[1] / "docs"

# every page is either run or says why not, so that a new page is not forgotten
RUN = [
    "index.rst",
    "getting_started.rst",
    "retrieval.md",
    "serving.md",
    "training_at_scale.md",
    "nested_codes.md",
]
NOT_RUN = {
    "api.rst": "autodoc only: the docstrings' examples are doctests of their own",
    "examples.rst": "shell commands of the example scripts, run by tests/test_examples.py",
    "user_guide.rst": "no code blocks",
    "anchors.md": "no code blocks: a benchmark report",
    "open_question.md": "no code blocks: a benchmark report",
    "architecture.md": "no Python blocks: a design note",
    "guarantees.md": "no code blocks",
    "benchmarks.md": "no Python blocks: a benchmark report",
    "dask.md": "owned and tested elsewhere (tests/test_dask.py)",
}

PRELUDE = """\
from skhash import BinaryHashEncoder as _Encoder

_auto_epochs = _Encoder._auto_epochs  # tests/test_docs_code.py: two passes, for time
_Encoder._auto_epochs = lambda self, n_bits=None: min(2, _auto_epochs(self, n_bits))
del _Encoder
"""

CHECKS = {
    "index.rst": """
assert distances.shape == ids.shape == (5, 10)
assert (ids[:, 0] == range(5)).all()  # each digit's nearest row is itself
""",
    "getting_started.rst": """
import numpy as np
assert bits.shape == (1797, 64) and bits.dtype == np.uint8 and set(np.unique(bits)) <= {0, 1}
assert packed.shape == (1797, 8) and packed.dtype == np.uint8
assert (np.packbits(bits, axis=1) == packed).all()
assert relaxed.shape == (1797, 64) and relaxed.dtype == np.float32
assert np.abs(relaxed).max() <= 1 and ((relaxed > 0) == bits).all()
assert distances.shape == indices.shape == (5, 10)
assert (np.diff(distances, axis=1) >= 0).all()  # ascending distances
assert len(distances_8) == len(within_8) == 5
assert all(len(d) == len(r) and (d <= 8).all() for d, r in zip(distances_8, within_8))
assert search.best_params_["encoder__reg_weight"] in (0.1, 1.0, 10.0)
assert len(encoder.history_[:, "vertex_dist"]) == len(encoder.history_)
assert len(encoder.history_[-1, "hist_counts"]) == 12

# the log the page shows, of the fit its prose names: full length, not capped
BinaryHashEncoder._auto_epochs = _auto_epochs
print("--- the log of the page")
BinaryHashEncoder(n_bits=32, max_epochs=4, verbose=1, random_state=0).fit(X)
""",
    "retrieval.md": """
assert (np.diff(distances, axis=1) >= 0).all() and np.allclose(distances[:, 0], 0, atol=1e-3)
assert set(ids.ravel().tolist()) <= set(doc_ids.tolist())  # the queries are indexed rows
assert distances.shape == ids.shape == (5, 10)
assert len(index.ids_) == len(X) + len(X_new) - len(old_ids)
assert not set(old_ids) & set(index.ids_.tolist())
""",
    "serving.md": """
import os
assert distances.shape == ids_found.shape == (len(q_codes), 10)
assert (np.diff(distances, axis=1) >= 0).all()
assert set(ids_found.ravel().tolist()) <= set(ids.tolist())
assert (ids_found[:, 0] == ids[:5]).all()  # the queries are indexed rows: found first
assert os.path.getsize("codes.faissb") > 0
""",
    "training_at_scale.md": """
assert enc.n_steps_ == enc.max_steps
assert enc.transform(chunks[0]).shape == (len(chunks[0]), 64)
""",
    "nested_codes.md": """
assert codes.shape == (len(X), 128) and packed32.shape == (len(X), 4)
assert index.codes_.shape == (len(X), 8)  # 64-bit prefixes: 8 bytes per item
assert (index.codes_ == np.packbits(codes[:, :64], axis=1)).all()
""",
}

_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
_NOT_RUN = re.compile(r"^\s*(?:%|\.\.) not run: \S")


def _markdown_blocks(text):
    """``(code, lead_in)`` of every ```python fence, in order."""
    blocks, previous_end = [], 0
    for match in _FENCE.finditer(text):
        if match.group(1) in ("python", "py"):
            lead_in = text[previous_end : match.start()]
            blocks.append((match.group(2), lead_in))
        previous_end = match.end()
    return blocks


def _rst_blocks(text):
    """``(code, lead_in)`` of every Python literal or code-block, in order."""
    lines = text.splitlines()
    blocks, previous_end, i = [], 0, 0
    while i < len(lines):
        line = lines[i]
        directive = re.match(r"\s*\.\. (code-block|sourcecode|code)::\s*(\S*)", line)
        literal = line.rstrip().endswith("::") and not re.match(r"\s*\.\. \S+::", line)
        if not (directive or literal):
            i += 1
            continue
        is_python = literal or directive.group(2) in ("python", "py", "python3")
        start = i
        i += 1
        while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith(":")):
            i += 1  # blank lines, and a directive's options
        indent = len(lines[i]) - len(lines[i].lstrip()) if i < len(lines) else 0
        body = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) >= indent
        ):
            body.append(lines[i][indent:])
            i += 1
        if is_python and indent > 0:
            blocks.append(
                ("\n".join(body).strip("\n") + "\n", "\n".join(lines[previous_end:start]))
            )
        previous_end = i
    return blocks


def page_blocks(name):
    """``(code, run)`` of the Python blocks of docs/``name``, in order."""
    text = (DOCS / name).read_text(encoding="utf-8")
    blocks = _markdown_blocks(text) if name.endswith(".md") else _rst_blocks(text)
    result = []
    for code, lead_in in blocks:
        if code.lstrip().startswith(">>>"):
            raise AssertionError(
                f"{name}: a doctest block; teach tests/test_docs_code.py to run it"
            )
        result.append((code, _runs(lead_in)))
    return result


def _runs(lead_in):
    """Whether the text between a block and the one before it lacks a ``not run:`` mark."""
    return not any(_NOT_RUN.match(line) for line in lead_in.splitlines())


def _imports(code):
    """The import statements of ``code``, as source."""
    return [
        ast.unparse(node)
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]


def test_every_page_is_run_or_says_why_not():
    pages = {path.name for path in DOCS.glob("*.rst")} | {path.name for path in DOCS.glob("*.md")}
    optional = {"neighbors_benchmark.md"}  # written by benchmark scripts, when present
    assert pages - optional <= set(RUN) | set(NOT_RUN), "classify the new page in RUN or NOT_RUN"
    assert not set(RUN) & set(NOT_RUN)


def test_extractors_find_python_blocks_only():
    md = (
        "a\n\n```python\nx = 1\n```\n\n```sql\nSELECT\n```\n\n"
        "% not run: needs data\n```python\ny = x\n```\n\n```\nmake test\n```\n"
    )
    assert [b for b, _ in _markdown_blocks(md)] == ["x = 1\n", "y = x\n"]
    rst = (
        "Text::\n\n    a = 1\n\n    b = a\n\nMore.\n\n.. code-block:: console\n\n    make test\n\n"
        ".. math::\n\n   z = 1\n\n.. not run: needs data\n\n"
        ".. code-block:: python\n   :caption: c\n\n   c = 2\n"
    )
    blocks = _rst_blocks(rst)
    assert [b for b, _ in blocks] == ["a = 1\n\nb = a\n", "c = 2\n"]
    assert _runs(blocks[0][1]) and not _runs(blocks[1][1])
    assert [_runs(lead_in) for _, lead_in in _markdown_blocks(md)] == [True, False]


@pytest.fixture
def pg_database(pg_server):
    """The address of an empty database on the session's server, dropped afterwards."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(pg_server.get_uri(), autocommit=True) as connection:
        connection.execute("CREATE DATABASE docs_code")
        try:
            conninfo = make_conninfo(pg_server.get_uri(), dbname="docs_code")
            with psycopg.connect(conninfo, autocommit=True) as db:
                db.execute("CREATE EXTENSION vector")
            yield conninfo
        finally:
            connection.execute("DROP DATABASE docs_code WITH (FORCE)")


def page_script(name, blocks, replacements=None):
    """The script that runs ``blocks`` of docs/``name``: prelude, blocks, checks."""
    assert any(run for _, run in blocks), f"{name} has no block to run"
    parts = [PRELUDE]
    for code, run in blocks:
        if run:
            for placeholder, value in (replacements or {}).items():
                code = code.replace(placeholder, value)
            parts.append(code)
        else:
            compile(code, name, "exec")  # a skipped block must still be Python
            parts.extend(_imports(code))
    parts.append(CHECKS[name])
    return "\n".join(parts)


def test_a_block_not_run_is_compiled_and_its_imports_kept():
    blocks = [("x = 1\n", True), ("from skhash import Missing\ny = server()\n", False)]
    script = page_script("index.rst", blocks)
    assert "x = 1" in script and "from skhash import Missing" in script
    assert "server()" not in script
    with pytest.raises(SyntaxError):
        page_script("index.rst", [("x = 1\n", True), ("make test\n", False)])


def run_page(name, tmp_path, replacements=None):
    script = tmp_path / "page.py"
    script.write_text(page_script(name, page_blocks(name), replacements), encoding="utf-8")
    result = run_script(script, tmp_path, MPLBACKEND="Agg")
    assert result.returncode == 0, f"docs/{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("name", [page for page in RUN if page != "serving.md"])
def test_page_code_runs_as_written(name, tmp_path):
    out = run_page(name, tmp_path)
    if name == "index.rst":  # verbose=1: the table of the training log
        assert "vertex_dist" in out and "hist" in out
    if name == "getting_started.rst":
        page = (DOCS / name).read_text(encoding="utf-8").split(".. code-block:: text")[1]
        shown = _log_rows(page.split("\n\n")[1])
        printed = _log_rows(out.split("--- the log of the page")[1])
        assert len(shown) == len(printed) == 4
        for row_shown, row_printed in zip(shown, printed, strict=True):
            # every column but the last, dur, which is a time
            assert len(row_shown) == len(row_printed)
            for a, b in zip(row_shown[:-1], row_printed[:-1], strict=True):
                assert a == b or abs(float(a) - float(b)) <= 2e-4, (row_shown, row_printed)


def _log_rows(text):
    """The epoch rows of a ``verbose=1`` log, as lists of fields (colours removed)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return [line.split() for line in text.splitlines() if re.match(r"\s+\d+\s", line)]


def test_serving_code_runs_against_pgvector(tmp_path, pg_database):
    run_page("serving.md", tmp_path, {'"postgresql://..."': repr(pg_database)})
