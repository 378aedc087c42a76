import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.helpers import FAST


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def fitted(digits):
    """An encoder fitted once on 300 digits with FAST settings (callbacks, plotting)."""
    from skhash import BinaryHashEncoder

    X, _ = digits
    return BinaryHashEncoder(random_state=0, **FAST).fit(X[:300])
