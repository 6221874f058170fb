# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmpretrain.registry import METRICS

from .noise_detection import LABEL_SCORES, prediction_noise_metrics

#: The figures the metric reports, under ``<prefix>/<name>``.
NOISE_METRIC_KEYS = ('precision', 'recall', 'f1', 'auroc', 'memorisation')
#: The counts it adds with ``with_counts=True``.
NOISE_COUNT_KEYS = ('num_samples', 'num_noisy', 'num_flagged')


def _item(value, key: str, sample_idx) -> object:
    if value is None:
        raise KeyError(
            f'NoiseDetectionMetric: data sample {sample_idx} has no {key}. '
            'Evaluate it on the training split of a dataset that knows '
            'which labels it flipped (noise_rate or noise_file set), packed '
            'by PackFERInputs, which packs is_noisy.')
    return value.item() if hasattr(value, 'item') else value


@METRICS.register_module()
class NoiseDetectionMetric(BaseMetric):
    """How well a classifier's predictions find the wrong training labels.

    Evaluate it over the **training** split (usually with the test
    pipeline), whose data samples carry the training label ``gt_label``
    and ``is_noisy``. Each sample's clean score is
    :func:`mmfer.evaluation.label_scores` of its predicted probabilities
    (``pred_score``) and training label; samples scoring below
    ``threshold`` are flagged noisy. Reports ``precision``, ``recall``,
    ``f1`` and ``auroc`` of that detector and ``memorisation``, the share of
    noisy samples whose predicted class is their wrong training label.

    Samples are identified by ``sample_idx``: the repeats that a
    distributed sampler adds to even out the ranks count once.

    Args:
        score (str): ``'self_confidence'`` or ``'margin'``. Defaults to
            ``'self_confidence'``.
        threshold (float): Flagging threshold of the score. Defaults to 0.5.
        with_counts (bool): Also report the distinct samples, the noisy
            and the flagged ones (:data:`NOISE_COUNT_KEYS`). Defaults to
            False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'noise'``.
    """

    default_prefix = 'noise'

    def __init__(self,
                 score: str = 'self_confidence',
                 threshold: float = 0.5,
                 with_counts: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        if score not in LABEL_SCORES:
            raise ValueError(
                f'score={score!r} must be one of {LABEL_SCORES}.')
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.score = score
        self.threshold = threshold
        self.keys = NOISE_METRIC_KEYS + (NOISE_COUNT_KEYS
                                         if with_counts else ())

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each sample's index, prediction and labels.

        Args:
            data_batch: The batch (unused).
            data_samples (Sequence[dict]): Predicted data samples.
        """
        for sample in data_samples:
            idx = sample.get('sample_idx')
            self.results.append(
                dict(
                    sample_idx=int(_item(idx, 'sample_idx', idx)),
                    pred_score=np.asarray(
                        sample.get('pred_score').detach().cpu().numpy(),
                        dtype=np.float64),
                    gt_label=int(_item(sample.get('gt_label'), 'gt_label',
                                       idx)),
                    is_noisy=bool(_item(sample.get('is_noisy'), 'is_noisy',
                                        idx))))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the figures over the distinct samples.

        Args:
            results (list[dict]): What :meth:`process` kept, all ranks'.

        Returns:
            dict: ``precision``, ``recall``, ``f1``, ``auroc``,
            ``memorisation`` and, ``with_counts``, the counts.
        """
        indices = np.array([r['sample_idx'] for r in results])
        _, first = np.unique(indices, return_index=True)
        kept = [results[i] for i in first]
        metrics = prediction_noise_metrics(
            np.stack([r['pred_score'] for r in kept]),
            np.array([r['gt_label'] for r in kept]),
            np.array([r['is_noisy'] for r in kept]), self.score,
            self.threshold)
        return {key: metrics[key] for key in self.keys}
