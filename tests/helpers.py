"""Shared test settings and helpers (importable as ``tests.helpers``)."""

# Small and fast: these settings keep one fit on digits around a second.
FAST = dict(n_bits=16, hidden_layer_sizes=(32,), max_epochs=3, n_projections=32)
