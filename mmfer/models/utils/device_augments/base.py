# Copyright (c) OpenMMLab. All rights reserved.
from abc import ABCMeta, abstractmethod
from typing import Iterator, Sequence, Tuple

import numpy as np
import torch


def sample_rng(aug_seed: int, position: int, view: int) -> np.random.Generator:
    """The generator one augment draws one sample's parameters from.

    Args:
        aug_seed (int): The sample's seed, drawn by ``DrawDeviceAugmentSeed``
            in the sample's own seeded pipeline run.
        position (int): The augment's position in its view's list.
        view (int): The view index.

    Returns:
        np.random.Generator: A generator that depends on nothing else, so a
        sample's augmentation is the same whichever batch, worker or rank
        it is loaded in.
    """
    return np.random.default_rng([aug_seed, position, view])


def check_probability(prob: float) -> None:
    """Refuse a probability outside ``[0, 1]``.

    Args:
        prob (float): The probability of applying an augment.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'prob={prob} must be in [0, 1].')


class BaseDeviceAugment(metaclass=ABCMeta):
    """A batch augmentation drawn per sample on the CPU and applied to the
    whole batch on the batch's device.

    Each sample's parameters come from :func:`sample_rng` (a few numbers
    per sample, cheap on the CPU); :meth:`apply` then augments the batch in
    a handful of vectorised tensor operations on whatever device it lives.

    Every device augment works on float ``(N, C, H, W)`` batches in pixel
    units (0-255, in the channel order the pipeline loaded, BGR for
    ``LoadFERImage``), before ``FERDataPreprocessor`` converts to RGB and
    normalises: a value that is in pixel units on the CPU (a fill colour, a
    clipping range) means the same here. It returns a new tensor and never
    changes its input in place, so several views can start from one batch.
    """

    def __call__(self,
                 inputs: torch.Tensor,
                 aug_seeds: Sequence[int],
                 position: int = 0,
                 view: int = 0) -> torch.Tensor:
        """Augment a batch, each sample with its own draw.

        Args:
            inputs (torch.Tensor): Float images of shape ``(N, C, H, W)``.
            aug_seeds (Sequence[int]): One seed per sample.
            position (int): The augment's position in its view's list.
                Defaults to 0.
            view (int): The view index. Defaults to 0.

        Returns:
            torch.Tensor: The augmented batch.
        """
        if torch.is_tensor(aug_seeds):
            raise TypeError(
                f'{type(self).__name__} got a tensor where it takes the '
                'per-sample aug_seeds: device augments go in '
                'FERDataPreprocessor(device_augments=[...]), not in '
                'batch_augments or train_cfg.augments.')
        if len(aug_seeds) != inputs.size(0):
            raise ValueError(
                f'{type(self).__name__} got {len(aug_seeds)} aug_seeds for '
                f'a batch of {inputs.size(0)} images: give one per image.')
        return self.apply(
            inputs,
            self.draw_params(aug_seeds, position, view, *inputs.shape[-2:]))

    def draw_params(self, aug_seeds: Sequence[int], position: int, view: int,
                    height: int, width: int) -> np.ndarray:
        """Draw every sample's parameters.

        Args:
            aug_seeds (Sequence[int]): One seed per sample.
            position (int): The augment's position in its view's list.
            view (int): The view index.
            height (int): Image height.
            width (int): Image width.

        Returns:
            np.ndarray: An int64 array with one row of :meth:`draw` per
            sample.
        """
        rows = [
            self.draw(sample_rng(seed, position, view), height, width)
            for seed in aug_seeds
        ]
        return np.asarray(rows, dtype=np.int64).reshape(len(rows), -1)

    @abstractmethod
    def draw(self, rng: np.random.Generator, height: int,
             width: int) -> Sequence[int]:
        """Draw one sample's parameters.

        Args:
            rng (np.random.Generator): The sample's generator.
            height (int): Image height.
            width (int): Image width.

        Returns:
            Sequence[int]: The sample's parameters.
        """

    @abstractmethod
    def apply(self, inputs: torch.Tensor, params: np.ndarray) -> torch.Tensor:
        """Augment the batch with the drawn parameters.

        Args:
            inputs (torch.Tensor): Float images of shape ``(N, C, H, W)``.
            params (np.ndarray): One row of :meth:`draw` per sample.

        Returns:
            torch.Tensor: The augmented batch.
        """


def params_on(params: np.ndarray, inputs: torch.Tensor) -> torch.Tensor:
    """Move drawn parameters to the batch's device.

    Args:
        params (np.ndarray): The drawn int64 parameters.
        inputs (torch.Tensor): The batch.

    Returns:
        torch.Tensor: ``params`` as an int64 tensor on ``inputs``' device.
    """
    return torch.from_numpy(params).to(inputs.device)


def box_sides(rng: np.random.Generator,
              area: int,
              scale: Tuple[float, float],
              ratio: Tuple[float, float],
              tries: int = 10) -> Iterator[Tuple[int, int]]:
    """Candidate box sides, drawn as torchvision's ``RandomErasing`` and
    ``RandomResizedCrop`` draw them.

    Each try draws the box area as a uniform share in ``scale`` of
    ``area`` and the side ratio log-uniformly in ``ratio``, and yields the
    rounded sides ``(round(sqrt(a * r)), round(sqrt(a / r)))``; the caller
    takes the first pair that fits its image, and draws the position after
    it.

    Args:
        rng (np.random.Generator): The sample's generator.
        area (int): The image area in pixels.
        scale (tuple[float, float]): Range of the box's share of the area.
        ratio (tuple[float, float]): Range of the ratio of the first side
            to the second.
        tries (int): How many pairs to draw at most. Defaults to 10.

    Yields:
        tuple[int, int]: The two sides of a candidate box.
    """
    log_ratio = np.log(ratio)
    for _ in range(tries):
        box_area = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(*log_ratio))
        yield (int(round(np.sqrt(box_area * aspect))),
               int(round(np.sqrt(box_area / aspect))))
