"""The torch module that maps features to relaxed codes in (-1, 1)."""

import torch
from torch import nn


class HashMLP(nn.Module):
    """MLP with a linear shortcut, per-bit normalisation and a ``tanh(beta * .)`` head.

    ``z = tanh(beta * BN(W x + MLP(x)))`` on standardised inputs ``x``. The linear
    shortcut offers the network a linear hash like ITQ's to start from and keeps
    ``n_bits`` independent directions reachable when ``n_bits`` exceeds the hidden
    width; with wide hidden layers training leaves it nearly idle (1.2% of the
    variance of ``h`` at 4,096 units, ``docs/nested_codes.md``) and the hidden layers
    carry the hash. The affine-free batch norm centres and scales every bit, which
    keeps bits balanced and makes ``beta`` the single knob for how close outputs sit to
    the vertices. ``beta`` is a buffer, set through :meth:`set_beta` (during training by
    :class:`~skhash.callbacks.OutputScaleSchedule`) and saved with the weights.

    Parameters
    ----------
    n_features : int
        Input width.
    n_bits : int
        Output width.
    hidden_layer_sizes : tuple of int, default=(256,)
        Widths of the hidden layers of the non-linear branch; ``()`` gives a purely
        linear hash.
    input_mean, input_scale : array-like of shape (n_features,), default=None
        Standardisation applied to inputs first, ``(X - input_mean) / input_scale``
        (none when None). Kept in the module so that the training data, and the
        similarities the loss compares with, stay the raw inputs.
    """

    def __init__(
        self, n_features, n_bits, hidden_layer_sizes=(256,), input_mean=None, input_scale=None
    ):
        super().__init__()
        mean = torch.zeros(n_features) if input_mean is None else torch.as_tensor(input_mean)
        scale = torch.ones(n_features) if input_scale is None else torch.as_tensor(input_scale)
        self.register_buffer("input_mean", mean.float().clone())
        self.register_buffer("input_scale", scale.float().clone())
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.GELU()]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.nonlinear = nn.Linear(width, n_bits) if hidden_layer_sizes else None
        self.linear = nn.Linear(n_features, n_bits)
        self.norm = nn.BatchNorm1d(n_bits, affine=False)
        self.register_buffer("beta", torch.tensor(1.0))

    def set_beta(self, beta):
        """Set the output steepness ``beta`` of ``tanh(beta * h)``.

        Parameters
        ----------
        beta : float
            New steepness, > 0.
        """
        self.beta.fill_(float(beta))

    def normalised(self, X):
        """The batch-normalised pre-activations ``BN(h)`` of rows ``X``, before the steepness."""
        X = (X - self.input_mean) / self.input_scale
        h = self.linear(X)
        if self.nonlinear is not None:
            h = h + self.nonlinear(self.hidden(X))
        return self.norm(h)

    def forward(self, X):
        return torch.tanh(self.beta * self.normalised(X))
