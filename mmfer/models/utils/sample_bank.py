# Copyright (c) OpenMMLab. All rights reserved.
"""Per-sample state of a model, indexed by the dataset's ``sample_idx``."""
import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn


def occurrence_mask(indices: torch.Tensor, last: bool = False) -> torch.Tensor:
    """Mask of the first (or last) position of every distinct value.

    Args:
        indices (torch.Tensor): ``(N,)`` non-negative integers.
        last (bool): Mark the last position instead of the first.
            Defaults to False.

    Returns:
        torch.Tensor: ``(N,)`` bool.
    """
    positions = torch.arange(indices.numel(), device=indices.device)
    start = -1 if last else indices.numel()
    chosen = positions.new_full((int(indices.max()) + 1, ),
                                start).scatter_reduce(
                                    0, indices, positions,
                                    reduce='amax' if last else 'amin')
    return chosen[indices] == positions


def first_occurrence(indices: torch.Tensor) -> torch.Tensor:
    """Mask of the first position of every distinct value of ``indices``."""
    return occurrence_mask(indices)


def last_occurrence(indices: torch.Tensor) -> torch.Tensor:
    """Mask of the last position of every distinct value of ``indices``."""
    return occurrence_mask(indices, last=True)


class PerSampleBuffers(nn.Module):
    """Base of modules whose buffers hold one row per training sample.

    The buffers named in :attr:`RESIZABLE_BUFFERS` grow together (by
    doubling) to the largest ``sample_idx`` written, so no dataset length is
    needed, and loading a checkpoint first resizes them to the checkpoint's
    number of rows, so that it restores them instead of failing on the
    shape (:func:`mmfer.apis.load_weights` accepts the other row count
    too). New rows hold :meth:`fill_value`.
    """

    #: Buffers whose number of rows follows the data: a checkpoint may
    #: hold another number than a freshly built model.
    RESIZABLE_BUFFERS: Tuple[str, ...] = ()

    def fill_value(self, name: str) -> float:
        """The value of the rows of buffer ``name`` never written.

        Args:
            name (str): One of :attr:`RESIZABLE_BUFFERS`.

        Returns:
            float: Defaults to 0 (False for a bool buffer).
        """
        return 0

    @property
    def capacity(self) -> int:
        """int: Number of rows the buffers hold now."""
        return getattr(self, self.RESIZABLE_BUFFERS[0]).size(0)

    def reserve(self, size: int) -> None:
        """Grow the buffers (by doubling) to hold at least ``size`` rows.

        Args:
            size (int): Rows needed.
        """
        current = self.capacity
        if size <= current:
            return
        size = max(size, 2 * current)
        for name in self.RESIZABLE_BUFFERS:
            old = getattr(self, name)
            grown = old.new_full((size, ) + old.shape[1:],
                                 self.fill_value(name))
            grown[:current] = old
            setattr(self, name, grown)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        for name in self.RESIZABLE_BUFFERS:
            saved = state_dict.get(prefix + name)
            current = getattr(self, name)
            if saved is not None and saved.dim() == current.dim():
                setattr(
                    self, name,
                    current.new_full((saved.size(0), ) + current.shape[1:],
                                     self.fill_value(name)))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class SampleBank(PerSampleBuffers):
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
        self._fill_value = fill_value
        self.register_buffer(
            'values', torch.full((0, *row_shape), fill_value, dtype=dtype))

    def fill_value(self, name: str) -> float:
        """The value of rows never written.

        Args:
            name (str): ``'values'``.

        Returns:
            float: The bank's ``fill_value``.
        """
        return self._fill_value

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
        self.reserve(int(indices.max()) + 1)
        first = first_occurrence(indices)
        self.values[indices[first]] = rows[first].to(self.values)

    def known(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The rows written so far.

        Returns:
            tuple[Tensor, Tensor]: Their sample indices ``(K,)`` and rows
            ``(K, *row_shape)``.
        """
        unknown = self.values == self._fill_value
        if unknown.dim() > 1:
            unknown = unknown.flatten(1).all(dim=1)
        indices = torch.nonzero(~unknown).flatten()
        return indices, self.values[indices]


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
