"""The training batch: one documented type from the dataset to the loss and the diagnostics.

A :class:`Batch` is what :class:`~skhash._datasets.NeighborPairDataset` returns,
what :class:`~skhash._net.HashNet` feeds the network (``batch.inputs``), what
:class:`~skhash._objective.HashingLoss` splits the network's outputs by
(``batch.split``) and what :class:`~skhash.callbacks.HypercubeDiagnostics` reads
(``len(batch)`` items). skorch sees it as the ``X`` of a ``(X, y)`` pair whose
``y`` is None.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Batch:
    """Rows of one training step: items, optional partners, labels.

    The network sees ``inputs``: the items, then the partners. Its outputs are
    split back the same way (:meth:`split`), so a loss term can ask for the
    items' codes, the partners' codes or both.

    Other compositions fit the same type: a dataset that groups several items
    of one class per batch returns their rows as ``items`` with their
    ``labels`` and no partners; one that draws ``m`` partners per item stacks
    them block after block in ``partners`` (row ``j * n_items + i`` is the
    ``j``-th partner of item ``i``), which terms that need one partner per item
    reject by shape.

    Parameters
    ----------
    items : torch.Tensor of shape (n_items, n_features)
        Inputs of the batch's items, as given to ``fit`` (float32).
    labels : torch.Tensor of shape (n_items,)
        Class index of each item (int64), -1 for an unlabelled item.
    partners : torch.Tensor of shape (m * n_items, n_features) or None, default=None
        Inputs of the items' partners (one input-space neighbour each for the
        neighbourhood term), or None when the batch has none.
    """

    items: torch.Tensor
    labels: torch.Tensor
    partners: torch.Tensor | None = None

    def __post_init__(self):
        n = len(self.items)
        if len(self.labels) != n:
            raise ValueError(f"labels has {len(self.labels)} rows for {n} items.")
        if self.partners is not None and (
            len(self.partners) % max(n, 1) or self.partners.shape[1:] != self.items.shape[1:]
        ):
            raise ValueError(
                f"partners of shape {tuple(self.partners.shape)} do not come in blocks of "
                f"the items' shape {tuple(self.items.shape)}."
            )

    def __len__(self):
        """Number of items (what skorch records as the batch size)."""
        return len(self.items)

    @property
    def n_items(self):
        """Number of items, the first rows of :attr:`inputs`."""
        return len(self.items)

    @property
    def inputs(self):
        """All rows the network sees: the items, then the partners."""
        if self.partners is None:
            return self.items
        return torch.cat([self.items, self.partners])

    def split(self, outputs):
        """Split outputs of :attr:`inputs` into the items' and the partners'.

        Parameters
        ----------
        outputs : torch.Tensor of shape (len(inputs), ...)

        Returns
        -------
        items : torch.Tensor of shape (n_items, ...)
        partners : torch.Tensor or None
            None when the batch has no partners.
        """
        n = self.n_items
        return outputs[:n], (None if self.partners is None else outputs[n:])

    def to(self, device):
        """The same batch on ``device`` (no copy when already there)."""
        return Batch(
            self.items.to(device),
            self.labels.to(device),
            None if self.partners is None else self.partners.to(device),
        )
