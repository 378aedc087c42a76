"""Declared parameter validation and transactional fitting for skhash estimators.

A small equivalent of scikit-learn's private ``sklearn.utils._param_validation``
and ``sklearn.base._fit_context`` (private there, so not imported): every public
estimator declares ``_parameter_constraints``, a dict from parameter name to a
list of allowed forms, and wraps its fitting methods in :func:`fit_context`.

Allowed forms in a constraint list:

- an :class:`Interval` (integers or reals between bounds);
- an :class:`Options` (a fixed set of values, e.g. strings);
- ``None`` (the value ``None``);
- ``"boolean"`` (``bool`` or ``numpy.bool_``);
- ``"random_state"`` (``None``, an int, or a ``numpy.random.RandomState``);
- ``"array-like"`` (a list, tuple or array);
- ``callable`` (any callable);
- a type (``isinstance`` check).

:func:`fit_context` validates the parameters, then runs the fit on a *staged*
shallow copy of the estimator and moves the staged fitted state onto the
estimator only when the fit returns: a fit that raises (bad data, Ctrl-C,
divergence, a failing callback) leaves the estimator exactly as it was, fitted
or not.
"""

import copy
import functools
import math
import numbers

import numpy as np

__all__ = [
    "Interval",
    "Options",
    "check_query_params",
    "fit_context",
    "validate_parameter_constraints",
    "validate_params",
]


class Interval:
    """Numbers of one kind between two bounds.

    Parameters
    ----------
    kind : {numbers.Integral, numbers.Real}
        ``Integral`` accepts integers only (not ``bool``); ``Real`` accepts any
        real number except ``bool`` and NaN.
    left, right : float or None
        Bounds; None is unbounded on that side (and never reached: infinity is
        only allowed by an explicit ``left=-inf``/``right=inf`` closed bound).
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.
    """

    def __init__(self, kind, left, right, *, closed):
        if kind not in (numbers.Integral, numbers.Real):
            raise ValueError(f"kind must be numbers.Integral or numbers.Real, got {kind!r}.")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be left, right, both or neither, got {closed!r}.")
        self.kind = kind
        self.left = left
        self.right = right
        self.closed = closed

    def __contains__(self, value):
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.kind):
            return False
        # ints need no NaN check (and math.isnan overflows on ints beyond float's range)
        if not isinstance(value, numbers.Integral) and math.isnan(value):
            return False
        left = -math.inf if self.left is None else self.left
        right = math.inf if self.right is None else self.right
        left_ok = value >= left if self.closed in ("left", "both") else value > left
        right_ok = value <= right if self.closed in ("right", "both") else value < right
        if self.left is None and value == -math.inf:
            left_ok = False
        if self.right is None and value == math.inf:
            right_ok = False
        return left_ok and right_ok

    def __str__(self):
        kind = "an int" if self.kind is numbers.Integral else "a float"
        lo = "-inf" if self.left is None else self.left
        hi = "inf" if self.right is None else self.right
        open_left = "[" if self.closed in ("left", "both") and self.left is not None else "("
        open_right = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        return f"{kind} in the range {open_left}{lo}, {hi}{open_right}"


class Options:
    """One of a fixed set of values (compared with ``==``, types must match).

    Parameters
    ----------
    kind : type
        Type every allowed value has, e.g. ``str``.
    options : set
        The allowed values.
    """

    def __init__(self, kind, options):
        self.kind = kind
        self.options = frozenset(options)

    def __contains__(self, value):
        return isinstance(value, self.kind) and value in self.options

    def __str__(self):
        listed = ", ".join(repr(o) for o in sorted(self.options, key=str))
        return f"one of {{{listed}}}"


def _is_random_state(value):
    if value is None or isinstance(value, np.random.RandomState):
        return True
    # numpy seeds: integers in [0, 2**32 - 1], as scikit-learn's "random_state"
    return value in Interval(numbers.Integral, 0, 2**32 - 1, closed="both")


_NAMED = {
    "boolean": (lambda v: isinstance(v, bool | np.bool_), "a bool"),
    "random_state": (_is_random_state, "an int in [0, 2**32 - 1], a numpy RandomState or None"),
    "array-like": (
        lambda v: isinstance(v, list | tuple | np.ndarray) or hasattr(v, "__array__"),
        "an array-like",
    ),
}


def _satisfies(value, constraint):
    if constraint is None:
        return value is None
    if constraint is callable:
        return callable(value)
    if isinstance(constraint, str):
        return _NAMED[constraint][0](value)
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (
            constraint is not bool and isinstance(value, bool) and constraint is not object
        )
    return value in constraint


def _describe(constraint):
    if constraint is None:
        return "None"
    if constraint is callable:
        return "a callable"
    if isinstance(constraint, str):
        return _NAMED[constraint][1]
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__!r}"
    return str(constraint)


def validate_parameter_constraints(constraints, params, caller_name):
    """Raise a ValueError naming the first parameter that fits none of its forms.

    Parameters
    ----------
    constraints : dict of str to list or "no_validation"
        Allowed forms per parameter (see the module docstring).
    params : dict
        Parameter values, e.g. ``estimator.get_params(deep=False)``.
    caller_name : str
        Named in the message, e.g. the estimator's class name.

    Raises
    ------
    ValueError
        ``"The 'n_bits' parameter of SimHash must be an int in the range
        [1, inf). Got True instead."``
    """
    for name, value in params.items():
        allowed = constraints.get(name)
        if allowed is None or allowed == "no_validation":
            continue
        if any(_satisfies(value, c) for c in allowed):
            continue
        forms = [_describe(c) for c in allowed]
        text = forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " or " + forms[-1]
        raise ValueError(
            f"The {name!r} parameter of {caller_name} must be {text}. Got {value!r} instead."
        )


def check_query_params(estimator, names=None):
    """Check again the parameters a query reads (``names``, default
    ``estimator._query_parameters``): ``set_params`` after ``fit`` reaches
    queries without another ``fit``."""
    if names is None:
        names = estimator._query_parameters
    validate_parameter_constraints(
        {name: estimator._parameter_constraints[name] for name in names},
        {name: getattr(estimator, name) for name in names},
        type(estimator).__name__,
    )


def validate_params(constraints, caller_name, **params):
    """Validate keyword arguments of a function or method against constraints.

    Convenience for method arguments such as ``embed(batch_size=...)``; see
    :func:`validate_parameter_constraints`.
    """
    validate_parameter_constraints(constraints, params, caller_name)


def _fitted_attributes(estimator):
    """Public fitted attributes (``name_``): what a fresh fit must not inherit."""
    params = set(estimator.get_params(deep=False))
    return [
        key
        for key in vars(estimator)
        if key not in params and key.endswith("_") and not key.startswith("_")
    ]


def fit_context(*, prefer_skip_nested_validation=True, keep_fitted=False):
    """Decorate a fitting method: validate parameters, then fit transactionally.

    The method runs on a shallow copy of the estimator (the *stage*): the
    parameters are shared, the fitted attributes of the stage start empty (or,
    with ``keep_fitted=True`` for ``partial_fit``, as the current ones themselves,
    the same objects — a method that updates a fitted object in place must copy
    it first). Only when the method returns does the estimator take the stage's
    state, in one swap of its ``__dict__``. Any exception — a ValueError from late
    validation, ``KeyboardInterrupt``, ``MemoryError``, a divergence error —
    propagates and leaves the estimator exactly as it was.

    Parameters
    ----------
    prefer_skip_nested_validation : bool, default=True
        Kept for symmetry with scikit-learn's ``_fit_context``; unused.
    keep_fitted : bool, default=False
        Start the stage from the current fitted state (``partial_fit``).
    """

    def decorator(method):
        @functools.wraps(method)
        def wrapper(estimator, *args, **kwargs):
            validate_parameter_constraints(
                type(estimator)._parameter_constraints,
                estimator.get_params(deep=False),
                type(estimator).__name__,
            )
            stage = copy.copy(estimator)
            if not keep_fitted:
                for key in _fitted_attributes(stage):
                    delattr(stage, key)
            result = method(stage, *args, **kwargs)
            # commit: one swap of the whole instance state (parameters are the same
            # objects; configuration scikit-learn keeps on the instance, such as
            # set_output's or a Pipeline's callback context, was copied into the stage),
            # in one assignment: a Ctrl-C between a clear() and an update() would leave
            # an estimator without even its parameters
            estimator.__dict__ = dict(vars(stage))
            return estimator if result is stage else result

        return wrapper

    return decorator
