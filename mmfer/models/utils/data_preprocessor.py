# Copyright (c) OpenMMLab. All rights reserved.
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence, Union

import torch
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS

from .device_augments import ComposeDeviceAugments, read_aug_seeds


def is_multi_view(inputs: Any) -> bool:
    """Whether a collated ``inputs`` holds several views of each sample.

    mmpretrain's :class:`MultiView` makes ``img`` a list of views; after
    ``pseudo_collate`` the batch is a list of views, each a sequence of
    ``(C, H, W)`` tensors, and after ``default_collate`` a list of
    ``(N, C, H, W)`` tensors. A single view is a tensor or a list of
    ``(C, H, W)`` tensors.

    Args:
        inputs (Any): The ``inputs`` of a data batch.

    Returns:
        bool: True for a multi-view batch.
    """
    if not isinstance(inputs, (list, tuple)) or not inputs:
        return False
    first = inputs[0]
    return isinstance(first, (list, tuple)) or (torch.is_tensor(first)
                                                and first.dim() == 4)


def stack_images(
        view: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
    """One view of a batch as one ``(N, C, H, W)`` tensor.

    Args:
        view (Tensor | Sequence[Tensor]): A collated batch, or its images.

    Returns:
        torch.Tensor: The batch, stacked on the device it was on.
    """
    if torch.is_tensor(view):
        return view
    shapes = sorted({tuple(img.shape) for img in view})
    if len(shapes) > 1:
        raise ValueError(
            f'Device augments need images of one size per batch, got '
            f'{shapes}: resize them to one size in the train pipeline, '
            'e.g. dict(type=\'Resize\', scale=(112, 112)).')
    return torch.stack(list(view))


@MODELS.register_module()
class FERDataPreprocessor(ClsDataPreprocessor):
    """:class:`ClsDataPreprocessor` that also takes several views per sample.

    A single-view batch is processed exactly as by ``ClsDataPreprocessor``.
    A multi-view batch (from mmpretrain's ``MultiView`` transform, e.g. EAC's
    two independently augmented views) has each view normalised the same
    way and is returned as a list of ``(N, C, H, W)`` tensors, one per view,
    which :class:`FERClassifier` runs through the backbone one view per pass
    (``view_batching='separate'``, the default) or as one batch
    (``'joint'``).

    ``device_augments`` moves augmentation from the data-loading workers to
    the model's device (the GPU in practice): the workers only decode,
    resize and collate uint8 images, and in training the batch is moved to
    the device, augmented there in pixel units (0-255, channel order as
    loaded), then converted to RGB, normalised and, for a single view,
    passed to ``batch_augments`` (Mixup, CutMix) as usual. Evaluation
    batches are never augmented. Each sample's draw comes from the
    ``aug_seed`` that ``DrawDeviceAugmentSeed`` adds in the sample's own
    (seeded) pipeline run, so a sample is augmented the same whatever the
    number of workers, the batch or the rank it lands in, and a resumed run
    draws what an uninterrupted one draws. The augments are those in
    ``mmfer.models.utils.device_augments`` (``DeviceRandomFlip``,
    ``DeviceRandomErasing``, ``DeviceRandomCrop``,
    ``DeviceRandomResizedCrop``, ``DeviceGaussianNoise``), in one of two
    forms:

    - a list, applied in order to every view of the batch:
      ``device_augments=[dict(type='DeviceRandomFlip', prob=0.5)]``;
    - ``dict(views=[list_1, list_2])``, one list per view. From one image
      per sample it makes one view per list, each from the same raw image
      through its own list: EAC's views are ``views=[[noise, erasing],
      [dict(type='DeviceRandomFlip', prob=1.0), erasing]]``, view 2 being
      the mirror of the raw image with its own erasing draw.

    Args:
        device_augments (list[dict] | dict, optional): The training-time
            device augments, in one of the forms above. Defaults to None
            (no device augmentation; batches are processed exactly as
            without this argument).
        **kwargs: Arguments of
            :class:`mmpretrain.models.utils.ClsDataPreprocessor`.
    """

    def __init__(self,
                 device_augments: Optional[Union[List[dict], dict]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.device_augments = None if device_augments is None else \
            ComposeDeviceAugments(device_augments)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise every view and format the labels.

        Args:
            data (dict): The data batch from the dataloader.
            training (bool): Whether training-time batch augments may run.

        Returns:
            dict: ``inputs`` (a tensor, or a list of tensors for several
            views) and ``data_samples``.
        """
        if training and self.device_augments is not None:
            data = self._augment_on_device(data)
        views = data['inputs']
        if not is_multi_view(views):
            return self._format(data, training)
        if training and self.batch_augments is not None:
            raise ValueError(
                'Batch augments (Mixup/CutMix in train_cfg) would mix every '
                'view differently; they are not supported with multi-view '
                'inputs. Remove train_cfg.augments or the MultiView '
                'transform.')
        first = self._format(dict(data, inputs=views[0]), training)
        others = [
            self._format(dict(inputs=view), training)['inputs']
            for view in views[1:]
        ]
        return dict(
            inputs=[first['inputs']] + others,
            data_samples=first['data_samples'])

    def _format(self, data: dict, training: bool) -> dict:
        """``ClsDataPreprocessor.forward`` on one view, normalising in place.

        mmpretrain normalises out of place, image by image or on the whole
        batch, which allocates two float copies of the batch; on a CPU that
        is most of the preprocessing time. Images of one size are therefore
        stacked, converted (channel by channel, which also reorders BGR to
        RGB) and normalised in place here (the same
        arithmetic, so the same values), and ``ClsDataPreprocessor`` only
        pads, formats the labels and runs the batch augments. Images of
        several sizes take mmpretrain's own path.

        Args:
            data (dict): One view of the batch.
            training (bool): Whether training-time batch augments may run.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        inputs = data['inputs']
        if not torch.is_tensor(inputs) and len(
                {tuple(img.shape) for img in inputs}) != 1:
            return super().forward(data, training)
        stacked = self.cast_data(stack_images(inputs))
        batch = torch.empty(
            stacked.shape, dtype=torch.float32, device=stacked.device)
        channels = stacked.size(1)
        order = range(channels - 1, -1, -1) if self.to_rgb and \
            channels == 3 else range(channels)
        # one converting copy per channel does the BGR->RGB flip too
        for dst, src in enumerate(order):
            batch[:, dst].copy_(stacked[:, src])
        if self._enable_normalize:
            batch.sub_(self.mean).div_(self.std)
        with self._normalised_inputs():
            return super().forward(dict(data, inputs=batch), training)

    @contextmanager
    def _normalised_inputs(self) -> Iterator[None]:
        """Let ``ClsDataPreprocessor.forward`` take an RGB, normalised
        batch as it is."""
        saved = self.to_rgb, self._enable_normalize
        self.to_rgb, self._enable_normalize = False, False
        try:
            yield
        finally:
            self.to_rgb, self._enable_normalize = saved

    def _augment_on_device(self, data: dict) -> dict:
        inputs = data['inputs']
        views = inputs if is_multi_view(inputs) else [inputs]
        batches = [
            self.cast_data(stack_images(view)).float() for view in views
        ]
        augmented = self.device_augments(
            batches,
            read_aug_seeds(data.get('data_samples'), batches[0].size(0)))
        return dict(
            data, inputs=augmented[0] if len(augmented) == 1 else augmented)
