"""skorch glue: a ``NeuralNet`` whose batches are :class:`~skhash._batch.Batch` objects."""

from itertools import islice

import torch
from skorch import NeuralNet


class _Interrupted(BaseException):
    """Carries a KeyboardInterrupt past skorch, which swallows it in ``partial_fit``."""


class HashNet(NeuralNet):
    """``NeuralNet`` for :class:`~skhash._batch.Batch` batches and a multi-term loss.

    The network sees ``batch.inputs`` (items, then partners); the criterion,
    :class:`~skhash._objective.HashingLoss`, gets the outputs with the batch and
    returns a dict of terms. Every term is recorded per batch in ``history``
    under its own name.

    Two departures from skorch's defaults, both so that a failed training fails:

    - a non-finite loss or output stops training with a ``FloatingPointError``
      (divergence) instead of going on with NaN weights;
    - Ctrl-C (``KeyboardInterrupt``) propagates out of ``fit`` and
      ``partial_fit``; skorch would end training quietly and return.

    And one addition: a budget of training steps, ``max_steps``, over all
    epochs and ``partial_fit`` calls (counted in ``history``); the epoch that
    reaches it stops there, the epochs after it train nothing.

    Parameters
    ----------
    *args, **kwargs
        Those of :class:`skorch.NeuralNet`.
    max_steps : int or None, default=None
        Most training steps (batches) in all; None: no limit but ``max_epochs``.
    """

    def __init__(self, *args, max_steps=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_steps = max_steps

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training and iterator is not None and self.max_steps is not None:
            done = sum(len(row["batches"]) for row in self.history)
            iterator = islice(iterator, max(self.max_steps - done, 0))
        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def infer(self, x, **fit_params):
        return self.module_(x.to(self.device).inputs, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        terms = self.criterion_(y_pred, X.to(self.device))
        loss = terms["loss"]
        if training:
            for name, value in terms.items():
                if name != "loss":
                    self.history.record_batch(name, value.item())
            self._check_finite(loss, y_pred)
        return loss

    def _check_finite(self, loss, y_pred):
        if torch.isfinite(loss) and bool(torch.isfinite(y_pred).all()):
            return
        what = f"the loss is {loss.item()}" if not torch.isfinite(loss) else "outputs are NaN"
        raise FloatingPointError(
            f"Training diverged in epoch {len(self.history)}, batch "
            f"{len(self.history[-1, 'batches'])}: {what}."
        )

    def check_finite_state(self, rows):
        """Raise if the last step left a network whose outputs on training ``rows`` are
        not finite: each step checks the loss and outputs it starts from, so the one
        after the last (weights overflowing, or finite but huge) is seen by no check.
        The pre-activations are checked, not ``tanh`` of them: huge weights overflow
        them to +-inf, which ``tanh`` would hide as saturated outputs (or not, where the
        summation order meets inf - inf: CPUs differ)."""
        module = self.module_
        training = module.training
        try:
            module.eval()  # as the codes are computed: batch norm's running statistics
            with torch.no_grad():
                out = module.normalised(torch.as_tensor(rows, device=self.device))
        finally:
            module.train(training)
        if not bool(torch.isfinite(out).all()):
            raise FloatingPointError(
                "Training diverged: after the last step the network's pre-activations "
                "on the training rows are not finite (its weights overflowed)."
            )

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt as exc:
            raise _Interrupted from exc

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        except _Interrupted as exc:
            raise KeyboardInterrupt from exc.__cause__
