# Copyright (c) OpenMMLab. All rights reserved.
"""Per-sample state of a model, indexed by the dataset's ``sample_idx``."""
import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn


def first_occurrence(indices: torch.Tensor) -> torch.Tensor:
    """Mask of the first position of every distinct value of ``indices``.

    Args:
        indices (torch.Tensor): ``(N,)`` non-negative integers.

    Returns:
        torch.Tensor: ``(N,)`` bool.
    """
    positions = torch.arange(indices.numel(), device=indices.device)
    first = positions.new_full((int(indices.max()) + 1, ),
                               indices.numel()).scatter_reduce(
                                   0, indices, positions, reduce='amin')
    return first[indices] == positions


class SampleBank(nn.Module):
    """Rows of numbers, one per training sample, kept as a buffer.

    Row ``i`` belongs to the sample whose ``sample_idx`` is ``i``; rows
    never written hold ``fill_value``. The buffer ``values`` is part of the
    owner's state dict, so checkpoints hold it and ``--resume`` restores
    it. It grows (by doubling) to the largest index written, so the bank
    needs no dataset length; loading a checkpoint takes the checkpoint's
    number of rows. Under distributed training, the owner writes the rows
    of every rank (e.g. gathered with
    :func:`mmfer.utils.dist_utils.all_gather_rows`), so all ranks hold the
    same bank.

    Args:
        row_shape (Sequence[int]): Shape of one sample's row. Defaults to
            ``()``, one value per sample.
        fill_value (float): Value of the rows never written; choose one no
            written row holds entirely, as :meth:`known` tells the rows
            apart by it. Not NaN, so that equal banks compare equal (e.g.
            a resumed run's with an uninterrupted one's). Defaults to 0.
        dtype (torch.dtype): Type of the rows. Defaults to
            ``torch.float32``.
    """

    #: Buffers whose number of rows follows the data: a checkpoint may
    #: hold another number than a freshly built model
    #: (:func:`mmfer.apis.load_weights` accepts that).
    RESIZABLE_BUFFERS = ('values', )

    def __init__(self,
                 row_shape: Sequence[int] = (),
                 fill_value: float = 0.,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if math.isnan(fill_value):
            raise ValueError(
                'SampleBank(fill_value=nan): NaN never equals itself, so '
                'equal banks would compare unequal; pick a number no row '
                'takes (e.g. -1 for similarities).')
        self.fill_value = fill_value
        self.register_buffer(
            'values', torch.full((0, *row_shape), fill_value, dtype=dtype))

    @property
    def capacity(self) -> int:
        """int: Number of rows the buffer holds now."""
        return self.values.size(0)

    def _reserve(self, size: int) -> None:
        """Grow the buffer (by doubling) to hold at least ``size`` rows."""
        if size <= self.capacity:
            return
        grown = self.values.new_full(
            (max(size, 2 * self.capacity), ) + self.values.shape[1:],
            self.fill_value)
        grown[:self.capacity] = self.values
        self.values = grown

    @torch.no_grad()
    def update(self, indices: torch.Tensor, rows: torch.Tensor) -> None:
        """Write ``rows`` at ``indices``.

        Where an index repeats (a distributed sampler's padding, gathered
        from two ranks), its first row is written.

        Args:
            indices (torch.Tensor): ``(N,)`` sample indices.
            rows (torch.Tensor): ``(N, *row_shape)``, cast to the bank's
                dtype.
        """
        if indices.numel() == 0:
            return
        indices = indices.to(self.values.device, torch.long)
        if int(indices.min()) < 0:
            raise IndexError(
                f'SampleBank got sample_idx {int(indices.min())}; samples '
                "need their dataset index (mmengine's BaseDataset sets "
                'sample_idx and PackFERInputs packs it).')
        self._reserve(int(indices.max()) + 1)
        first = first_occurrence(indices)
        self.values[indices[first]] = rows[first].to(self.values)

    def known(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The rows written so far.

        Returns:
            tuple[Tensor, Tensor]: Their sample indices ``(K,)`` and rows
            ``(K, *row_shape)``.
        """
        unknown = self.values == self.fill_value
        if unknown.dim() > 1:
            unknown = unknown.flatten(1).all(dim=1)
        indices = torch.nonzero(~unknown).flatten()
        return indices, self.values[indices]

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        # The number of rows depends on the indices seen; take the
        # checkpoint's so that loading restores it instead of failing on
        # the shape.
        saved = state_dict.get(prefix + 'values')
        if saved is not None and saved.dim() == self.values.dim():
            self.values = self.values.new_full(
                (saved.size(0), ) + self.values.shape[1:], self.fill_value)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def sample_indices(data_samples: Sequence, device=None) -> torch.Tensor:
    """The ``sample_idx`` of every data sample, the row of its bank entry.

    Args:
        data_samples (Sequence[DataSample]): The batch's data samples.
        device (torch.device, optional): Where to put the indices.

    Returns:
        torch.Tensor: ``(N,)`` long.
    """
    indices = [sample.get('sample_idx') for sample in data_samples]
    if None in indices:
        raise KeyError(
            'A per-sample bank needs sample_idx in every data sample: the '
            "dataset sets it (mmengine's BaseDataset does) and PackFERInputs "
            'packs it; a pipeline that packs with another transform must '
            "keep 'sample_idx' in its meta_keys.")
    return torch.tensor(indices, dtype=torch.long, device=device)
