# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample


class FERSystem(BaseModel):
    """Base of mmfer's systems that train several networks or branches.

    :class:`MeanTeacherClassifier`, :class:`CoTeachingClassifier` and
    :class:`LANetClassifier` compose plain modules; this base gives them
    mmengine's ``forward`` modes. A subclass implements ``loss``, ``predict``
    and :meth:`forward_tensor`.
    """

    def forward_tensor(
            self, inputs: Union[torch.Tensor,
                                Sequence[torch.Tensor]]) -> torch.Tensor:
        """The predicting network's class scores before the softmax.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images (or views).

        Returns:
            torch.Tensor: ``(N, num_classes)``.
        """
        raise NotImplementedError

    def forward(self,
                inputs: Union[torch.Tensor, Sequence[torch.Tensor]],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """The unified entry of mmengine models.

        Args:
            inputs (Tensor | Sequence[Tensor]): Images or views.
            data_samples (list[DataSample], optional): Annotations.
            mode (str): ``'tensor'`` (:meth:`forward_tensor`), ``'loss'`` or
                ``'predict'``.

        Returns:
            Tensor | dict | list[DataSample]: Depends on ``mode``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.forward_tensor(inputs)
        raise RuntimeError(f'Invalid mode "{mode}".')
