"""skhash: learned binary hash codes and Hamming-distance retrieval, scikit-learn style.

Public names are resolved lazily (PEP 562): ``from skhash import
HammingNeighbors`` imports the numba search code only, never torch or skorch,
which load with :class:`BinaryHashEncoder`'s training.
"""

import importlib

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "BinaryHashEncoder": ("._encoder", "BinaryHashEncoder"),
    "HammingKNeighborsClassifier": ("._neighbors", "HammingKNeighborsClassifier"),
    "HammingNeighbors": ("._neighbors", "HammingNeighbors"),
    "HashIndex": ("._index", "HashIndex"),
    "PCAITQ": ("._baselines", "PCAITQ"),
    "SimHash": ("._baselines", "SimHash"),
    "callbacks": (".callbacks", None),
    "export": (".export", None),
    "losses": (".losses", None),
    "metrics": (".metrics", None),
    "plotting": (".plotting", None),
    "samplers": (".samplers", None),
}

__all__ = sorted(_LAZY)
__version__ = "0.2.0.dev0"


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
