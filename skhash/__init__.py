"""skhash: learned binary hash codes and Hamming-distance retrieval, scikit-learn style."""

from . import callbacks, metrics, plotting
from ._baselines import PCAITQ, SimHash
from ._encoder import BinaryHashEncoder
from ._neighbors import HammingNeighbors

__all__ = [
    "PCAITQ",
    "BinaryHashEncoder",
    "HammingNeighbors",
    "SimHash",
    "callbacks",
    "metrics",
    "plotting",
]
__version__ = "0.1.0"
