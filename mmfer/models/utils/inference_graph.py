# Copyright (c) OpenMMLab. All rights reserved.
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmpretrain.models.utils import ClsDataPreprocessor

#: Channel orders the graph's input may have.
INPUT_ORDERS = ('bgr', 'rgb')


class InferenceGraph(nn.Module):
    """Raw images in, class probabilities out: what a deployed model runs.

    One module that holds everything between a decoded, resized face crop
    and the scores of a classifier's ``predict``: the model's data
    preprocessor (channel order, mean and std), the predicting network's
    logits (``model(x, mode='tensor')``) and the softmax. Each mmfer
    system's ``mode='tensor'`` runs its predictor only, at the cost of a
    plain classifier: the student or the teacher of a
    ``MeanTeacherClassifier`` (``predict_with``), network 0 or 1 of a
    ``CoTeachingClassifier`` (or both for ``predict_with='ensemble'``,
    whose softmax is the mean of the two softmax outputs), and the
    expression tower and head of a ``LANetClassifier``.

    Args:
        model (BaseModel): A classifier whose data preprocessor is a
            :class:`ClsDataPreprocessor` (or mmfer's subclass of it), in
            eval mode.
        input_order (str): Channel order of the images fed to this module:
            ``'bgr'``, as mmfer's pipelines and ``cv2.imread`` give them, or
            ``'rgb'``, as PIL and most camera APIs do. Defaults to
            ``'bgr'``.

    Raises:
        ValueError: If ``input_order`` is unknown or the preprocessor pads
            its inputs.
        TypeError: If the preprocessor is not a ``ClsDataPreprocessor``.
    """

    def __init__(self, model: BaseModel, input_order: str = 'bgr') -> None:
        if input_order not in INPUT_ORDERS:
            raise ValueError(f'input_order={input_order!r} must be one of '
                             f'{INPUT_ORDERS}.')
        preprocessor = model.data_preprocessor
        if not isinstance(preprocessor, ClsDataPreprocessor):
            raise TypeError(
                f'{type(model).__name__} has a {type(preprocessor).__name__}'
                '; InferenceGraph folds in a ClsDataPreprocessor (or '
                'FERDataPreprocessor) only.')
        if preprocessor.pad_size_divisor > 1:
            raise ValueError(
                'the data preprocessor pads images to a multiple of '
                f'{preprocessor.pad_size_divisor}; set pad_size_divisor=1 '
                'in the config, the pipeline already makes every image the '
                'same size.')
        super().__init__()
        self.model = model
        self.input_order = input_order
        # The preprocessor reverses the pipeline's BGR channels when
        # ``to_rgb``; images that come in RGB already must not be reversed.
        self.reverse_channels = preprocessor.to_rgb != (input_order == 'rgb')
        normalise = preprocessor._enable_normalize
        self.register_buffer(
            'mean',
            preprocessor.mean.clone() if normalise else None,
            persistent=False)
        self.register_buffer(
            'std',
            preprocessor.std.clone() if normalise else None,
            persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities of raw images.

        Args:
            images (torch.Tensor): ``(N, 3, H, W)`` float images with values
                in ``[0, 255]``, in ``input_order``.

        Returns:
            torch.Tensor: ``(N, num_classes)`` softmax scores, equal to the
            ``pred_score`` of the model's ``predict``.
        """
        if self.reverse_channels:
            images = images.flip(1)
        if self.mean is not None:
            images = (images - self.mean) / self.std
        return self.model(images, mode='tensor').softmax(dim=1)
