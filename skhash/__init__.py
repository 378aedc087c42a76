"""skhash: learned binary hash codes and Hamming-distance retrieval, scikit-learn style."""

from . import callbacks
from ._baselines import PCAITQ, SimHash
from ._encoder import BinaryHashEncoder

__all__ = ["PCAITQ", "BinaryHashEncoder", "SimHash", "callbacks"]
__version__ = "0.1.0"
