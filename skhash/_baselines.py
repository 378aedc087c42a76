"""Classic binary hashing baselines: SimHash and PCA-ITQ.

Both are linear, data-independent (SimHash) or nearly so (ITQ), and are what a
learned code has to beat at equal bits.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._persistence import EncoderFilesMixin
from ._validation import Interval, fit_context


def _power_of_two_scale(X, minimum=0.0):
    """1, or the power of two just below the largest ``|X|`` if that is ``>= minimum``.

    Codes are signs of ``(X - mean) @ projection``: dividing all values by a
    power of two changes no sign (and, short of underflow, no rounding), and
    keeps sums of values near float64's limit (~1e308) finite.
    """
    peak = float(np.abs(X).max(initial=0.0))
    if peak == 0.0 or peak < minimum:
        return 1.0
    return 2.0 ** np.floor(np.log2(peak))


# Below this magnitude no sum or product a fit takes overflows float64: rows are
# used as given (so are their codes); above, scaled (see _power_of_two_scale).
_FIT_SCALE_MIN = 2.0**512


class _LinearHash(
    EncoderFilesMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Codes are ``(X - mean_) @ projection_ > 0``."""

    _parameter_constraints = {
        "n_bits": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": [
            Interval(numbers.Integral, 0, 2**32 - 1, closed="both"),
            np.random.RandomState,
            None,
        ],
    }

    def get_feature_names_out(self, input_features=None):
        """Output feature names, ``<classname>0`` to ``<classname>{n_bits - 1}``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored beyond the check against ``feature_names_in_``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return super().get_feature_names_out(input_features)

    def embed(self, X):
        """Projections of ``X`` before thresholding: ``transform`` is ``embed(X) > 0``.

        Their magnitudes say how far each bit is from flipping; what
        :class:`~skhash.HashIndex` ``(asymmetric=True)`` weighs a query's bits by.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        projections : ndarray of shape (n_samples, n_bits)
            ``(X - mean_) @ projection_``: float32 when both ``X`` and the rows
            given to ``fit`` are float32, else float64 (numpy's promotion).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        with np.errstate(over="ignore", invalid="ignore"):
            projections = (X - self.mean_) @ self.projection_
        rows = np.flatnonzero(~np.isfinite(projections).all(axis=1))
        if rows.size:
            # A sum overflowed (inf - inf is NaN, and NaN > 0 a silent 0 bit): again
            # with the values divided by a power of two, exactly; a projection that
            # is itself beyond the dtype's range is then +-inf, with its sign.
            scale = _power_of_two_scale(np.append(X[rows], self.mean_))
            with np.errstate(over="ignore"):
                scaled = (X[rows] / scale - self.mean_ / scale) @ self.projection_
                projections[rows] = scaled * scale
        return projections

    def transform(self, X):
        """Binary codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        codes : ndarray of shape (n_samples, n_bits), uint8
        """
        return (self.embed(X) > 0).astype(np.uint8)

    @property
    def _n_features_out(self):
        # the fitted width, not the n_bits parameter, which set_params may have changed
        if "projection_" in vars(self):
            return self.projection_.shape[1]
        return self.n_bits

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags


class SimHash(_LinearHash):
    """Sign of Gaussian random projections of the centred data (Charikar, 2002).

    Parameters
    ----------
    n_bits : int, default=64
        Code length.
    random_state : int, RandomState instance or None, default=None
        Seeds the projections.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Mean of the training rows, in their dtype (float32 or float64).
    projection_ : ndarray of shape (n_features, n_bits)
        Gaussian random directions, in the training rows' dtype.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when ``X`` has string column names.
    """

    def __init__(self, *, n_bits=64, random_state=None):
        self.n_bits = n_bits
        self.random_state = random_state

    @fit_context()
    def fit(self, X, y=None):
        """Draw the projections.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : SimHash
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        rng = check_random_state(self.random_state)
        # summed in float64: a float32 sum of large rows overflows; so does a float64
        # sum of rows near 1e308, scaled first
        scale = _power_of_two_scale(X, _FIT_SCALE_MIN)
        mean = (X / scale if scale != 1 else X).mean(axis=0, dtype=np.float64)
        self.mean_ = (mean * scale).astype(X.dtype)
        self.projection_ = rng.standard_normal((X.shape[1], self.n_bits)).astype(X.dtype)
        return self


class PCAITQ(_LinearHash):
    """PCA followed by Iterative Quantization (Gong & Lazebnik, 2011).

    Projects centred data on its top principal directions, then learns the
    rotation that brings the projections closest to their signs. With more bits
    than principal directions (``min(n_samples, n_features)``), these are
    padded with Gaussian random ones.

    Parameters
    ----------
    n_bits : int, default=64
        Code length.
    n_iter : int, default=50
        Rotation updates.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial rotation and the random directions that pad the
        principal ones.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Mean of the training rows, in their dtype (float32 or float64).
    projection_ : ndarray of shape (n_features, n_bits)
        PCA basis times the learned rotation.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when ``X`` has string column names.
    """

    _parameter_constraints = {
        **_LinearHash._parameter_constraints,
        "n_iter": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(self, *, n_bits=64, n_iter=50, random_state=None):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    @fit_context()
    def fit(self, X, y=None):
        """Fit the principal directions and the rotation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : PCAITQ
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        rng = check_random_state(self.random_state)
        # Rows near float64's limit are scaled (exactly): their sums overflow. The
        # codes, signs of centred projections, do not change.
        scale = _power_of_two_scale(X, _FIT_SCALE_MIN)
        if scale != 1:
            X = X / scale
        mean = X.mean(axis=0, dtype=np.float64)  # a float32 sum of large rows overflows
        self.mean_ = (mean * scale).astype(X.dtype)
        Xc = X.astype(np.float64) - mean
        _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        basis = vt[: self.n_bits].T
        if basis.shape[1] < self.n_bits:
            extra = rng.standard_normal((X.shape[1], self.n_bits - basis.shape[1]))
            basis = np.hstack([basis, extra])
        V = Xc @ basis
        R, _ = np.linalg.qr(rng.standard_normal((self.n_bits, self.n_bits)))
        for _ in range(self.n_iter):
            B = np.where(V @ R >= 0, 1.0, -1.0)
            U, _, Wt = np.linalg.svd(B.T @ V)
            R = (U @ Wt).T
        self.projection_ = (basis @ R).astype(X.dtype)
        return self
