"""Sphinx configuration of the skhash documentation: ``make docs`` builds it."""

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # document the checkout, installed or not

import skhash  # noqa: E402

project = "skhash"
author = "The skhash developers"
copyright = "The skhash developers"
release = version = skhash.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",  # the benchmark pages are Markdown
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

autodoc_default_options = {"member-order": "bysource"}
autodoc_inherit_docstrings = False  # skorch's and scikit-learn's docstrings are not ours
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"skhash {release}"
html_static_path = []
html_theme_options = {
    "description": "Learned binary hash codes, scikit-learn style",
    "fixed_sidebar": True,
}

# Pages written next to the benchmark scripts, by their authors. They join the
# table of contents when present, so the site builds before and after they exist.
OPTIONAL_PAGES = ("benchmarks", "neighbors_benchmark")
OPTIONAL_MARKER = "   .. optional benchmark pages"


def _add_optional_pages(app, docname, source):
    if docname != root_doc:
        return
    present = [page for page in OPTIONAL_PAGES if (DOCS / f"{page}.md").exists()]
    source[0] = source[0].replace(OPTIONAL_MARKER, "\n".join(f"   {p}" for p in present))


# "ndarray of shape (n_features_in_,)": in reStructuredText a trailing underscore
# makes a link, so escape it in the types of numpydoc parameter lists.
_TYPE_LINE = re.compile(r"^\s*\*{0,2}\w+\*{0,2} : .*shape")
_TRAILING_UNDERSCORE = re.compile(r"\b([A-Za-z]\w*?)_(?=[\s,)/*+-])")


def _escape_shape_underscores(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if _TYPE_LINE.match(line):
            head, _, shape = line.partition("shape")
            lines[i] = head + "shape" + _TRAILING_UNDERSCORE.sub(r"\1\\_", shape)


def setup(app):
    app.connect("source-read", _add_optional_pages)
    app.connect("autodoc-process-docstring", _escape_shape_underscores, priority=400)
