import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


# Small and fast: these settings keep one fit on digits around a second.
FAST = dict(n_bits=16, hidden_layer_sizes=(32,), max_epochs=3, n_projections=32)
