"""skorch glue: a ``NeuralNet`` whose loss is :class:`~skhash._criterion.HashingLoss`."""

from skorch import NeuralNet
from skorch.utils import to_tensor


class HashNet(NeuralNet):
    """``NeuralNet`` for pair batches and a multi-term loss.

    Batches from :class:`~skhash._datasets.NeighborPairDataset` have shape
    ``(batch, m, n_features)`` with ``m`` = 1 (items) or 2 (items and one
    neighbour each); :meth:`infer` flattens them item-block first, so the loss
    sees the items' outputs followed by their neighbours'. Every loss term is
    recorded per batch in ``history`` under its own name.
    """

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if x.dim() == 3:
            x = x.transpose(0, 1).reshape(-1, x.shape[-1])
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        labels = to_tensor(y_true, device=self.device)
        inputs = to_tensor(X, device=self.device)
        if inputs.dim() == 3:
            inputs = inputs.transpose(0, 1).reshape(-1, inputs.shape[-1])
        terms = self.criterion_(y_pred, labels, inputs)
        if training:
            for name, value in terms.items():
                if name != "loss":
                    self.history.record_batch(name, value.item())
        return terms["loss"]
