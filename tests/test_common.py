"""scikit-learn's estimator checks on every public estimator, no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skhash import (
    PCAITQ,
    BinaryHashEncoder,
    HammingKNeighborsClassifier,
    HammingNeighbors,
    SimHash,
)

# a small network: the checks fit it dozens of times
SMALL = dict(n_bits=8, hidden_layer_sizes=(16,), n_projections=16, active_dims=4, max_epochs=2)


@parametrize_with_checks(
    [
        BinaryHashEncoder(random_state=0, **SMALL),
        # smoothed codes: the anchors' k-means and cosine scan on the checks' odd inputs
        BinaryHashEncoder(random_state=0, n_anchors=8, **SMALL),
        SimHash(n_bits=8, random_state=0),
        PCAITQ(n_bits=8, n_iter=5, random_state=0),
        # the common checks feed arbitrary floats: binarize=0.0 turns them into bits
        HammingNeighbors(binarize=0.0),
        HammingKNeighborsClassifier(binarize=0.0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
