# Copyright (c) OpenMMLab. All rights reserved.
"""Label-issue report: which training labels does a trained model doubt?

Runs the model of CONFIG with the weights of CKPT over the **training
split**, with the **test pipeline** (no augmentation, so a sample's score
depends on the model only), and writes to ``--out``:

- ``label_issues.csv``: every training sample, most suspect first, with its
  image, given (training) label, predicted label, confidence (the predicted
  class's probability), ``p_given`` (the probability of the given label)
  and ``score``, the suspicion of the given label: ``1 - self-confidence``
  by default (``--score``), and ``flagged`` where the clean score is below
  ``--threshold``; where the dataset knows the clean labels (synthetic
  noise), also ``clean_label`` and ``is_noisy``;
- ``suspects.png``: the top ``--top-k`` suspects, captioned
  ``given -> predicted`` with the probability the model gives the given
  label (3 significant digits: a score that rounds to 1.00 still ranks)
  and, where the dataset knows the clean labels, whether the label is
  known to be noisy (red caption) or clean;
- ``class_summary.csv``: per given class, samples, flagged samples and the
  mean probability of the given label (with the known noise: noisy
  samples, precision and recall of the flags);
- ``summary.json``: the settings and, where the noise is known, the
  precision, recall, F1 and AUROC of the flags and the memorisation rate
  (noisy samples predicted as their wrong training label).

Scores: ``self_confidence`` (default), the predicted probability of the
given label, is the label-quality score of confident learning: a flipped
label gets little probability once the model has learned the true class,
and it needs nothing but the predictions, so it applies to every method.
``margin`` also counts how strongly another class is preferred.

Example::

    python tools/analysis_tools/noise_report.py \\
        configs/baseline/r18_synthfer_noise30.py \\
        work_dirs/r18_synthfer_noise30/epoch_16.pth --out noise_report
"""
import argparse
import csv
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import mmfer  # noqa: F401  (stack fixes before any config is read)
from mmengine.config import Config, DictAction

from mmfer.utils.compat import add_allow_pickle_argument

# Kept in sync with mmfer.evaluation.LABEL_SCORES (tested); spelled out so
# that --help answers before torch is imported.
LABEL_SCORES = ('self_confidence', 'margin')
CSV_COLUMNS = ('rank', 'sample_idx', 'img_path', 'given_label',
               'given_class', 'pred_label', 'pred_class', 'confidence',
               'p_given', 'score', 'flagged')
TRUTH_COLUMNS = ('clean_label', 'clean_class', 'is_noisy')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Rank the training labels a trained model doubts; '
        'score the ranking where the flipped labels are known.')
    parser.add_argument('config', help='the config the model was trained '
                        'with')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument(
        '--out', default='noise_report', help='output folder')
    parser.add_argument(
        '--score',
        choices=LABEL_SCORES,
        default='self_confidence',
        help='clean score of a label: the predicted probability of the '
        'given label (self_confidence) or the margin over the best other '
        'class')
    parser.add_argument(
        '--threshold',
        type=float,
        default=0.5,
        help='flag labels whose clean score is below it')
    parser.add_argument(
        '--top-k', type=int, default=25, help='suspects in the image grid')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=64,
        help='images per forward pass over the training split')
    parser.add_argument(
        '--num-workers',
        type=int,
        default=0,
        help='data-loading worker processes (0: load in the main process)')
    parser.add_argument(
        '--device',
        help='device of the model (default: cuda if available, else cpu)')
    add_allow_pickle_argument(parser)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.dataset.data_root=data/synthfer')
    return parser.parse_args(argv)


if __name__ == '__main__':
    # --help and argument errors are answered before torch is imported.
    parse_args()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmpretrain.registry import DATASETS  # noqa: E402

from mmfer.apis import build_model, load_weights  # noqa: E402
from mmfer.engine.hooks.noise_detection_hook import (  # noqa: E402
    build_loader, predict_probabilities, scoring_dataset_cfg)
from mmfer.evaluation import (NOISE_METRIC_KEYS, label_scores,  # noqa: E402
                              noise_detection_metrics)
from mmfer.utils.dist_utils import sample_info  # noqa: E402


def class_name(classes: Sequence[str], label: int) -> str:
    """The name of class ``label``, or the number where none is known."""
    return classes[label] if label < len(classes) else str(label)


def build_rows(info: Dict[str, Optional[np.ndarray]], probs: np.ndarray,
               score: str, threshold: float,
               classes: Sequence[str]) -> List[dict]:
    """One row per training sample, most suspect first.

    Args:
        info (dict): ``img_path``, ``train_label``, ``clean_label``,
            ``is_noisy`` per sample (None where unknown).
        probs (np.ndarray): ``(N, C)`` predicted probabilities.
        score (str): The clean score (:data:`LABEL_SCORES`).
        threshold (float): Flagging threshold of the clean score.
        classes (Sequence[str]): Class names.

    Returns:
        list[dict]: Rows with :data:`CSV_COLUMNS` (and
        :data:`TRUTH_COLUMNS` where the clean labels are known).
    """
    given = info['train_label']
    clean_score = label_scores(probs, given, score)
    pred = probs.argmax(axis=1)
    # most suspect first; ties keep the dataset order
    order = np.argsort(-(1.0 - clean_score), kind='stable')
    rows = []
    for rank, i in enumerate(order, start=1):
        row = dict(
            rank=rank,
            sample_idx=int(i),
            img_path=info['img_path'][i]
            if info.get('img_path') is not None else '',
            given_label=int(given[i]),
            given_class=class_name(classes, int(given[i])),
            pred_label=int(pred[i]),
            pred_class=class_name(classes, int(pred[i])),
            confidence=float(probs[i, pred[i]]),
            p_given=float(probs[i, given[i]]),
            score=float(1.0 - clean_score[i]),
            flagged=bool(clean_score[i] < threshold))
        if info.get('clean_label') is not None:
            row.update(
                clean_label=int(info['clean_label'][i]),
                clean_class=class_name(classes, int(info['clean_label'][i])),
                is_noisy=bool(info['is_noisy'][i]))
        rows.append(row)
    return rows


def write_csv(path: str, rows: List[dict], columns: Sequence[str]) -> None:
    """Write ``rows`` with a header; floats with 6 decimals.

    Args:
        path (str): Output file.
        rows (list[dict]): Rows holding ``columns``.
        columns (Sequence[str]): Header.
    """
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(columns)
        for row in rows:
            writer.writerow([
                f'{row[c]:.6f}' if isinstance(row[c], float) else row[c]
                for c in columns
            ])


def class_summary(rows: List[dict], classes: Sequence[str]) -> List[dict]:
    """Per given class: samples, flags and, with known noise, their
    precision and recall.

    Args:
        rows (list[dict]): :func:`build_rows`'s rows.
        classes (Sequence[str]): Class names.

    Returns:
        list[dict]: One row per class, in class order.
    """
    known = bool(rows) and 'is_noisy' in rows[0]
    summary = []
    num_classes = max([len(classes)] + [r['given_label'] + 1 for r in rows])
    for c in range(num_classes):
        mine = [r for r in rows if r['given_label'] == c]
        flagged = [r for r in mine if r['flagged']]
        entry = dict(
            class_label=c,
            class_name=class_name(classes, c),
            num_samples=len(mine),
            num_flagged=len(flagged),
            flagged_share=len(flagged) / len(mine) if mine else math.nan,
            mean_p_given=float(np.mean([r['p_given'] for r in mine]))
            if mine else math.nan)
        if known:
            noisy = [r for r in mine if r['is_noisy']]
            hits = sum(r['is_noisy'] for r in flagged)
            entry.update(
                num_noisy=len(noisy),
                precision=hits / len(flagged) if flagged else math.nan,
                recall=hits / len(noisy) if noisy else math.nan)
        summary.append(entry)
    return summary


def suspect_caption(row: dict) -> Tuple[str, str]:
    """The caption of one suspect in ``suspects.png`` and its colour.

    The suspicion score is ``1 - p(given)`` for the default score, so a
    trained model's top suspects all read ``1.00`` at two decimals; the
    caption shows ``p(given)`` with 3 significant digits instead.

    Args:
        row (dict): A :func:`build_rows` row.

    Returns:
        tuple[str, str]: The caption, and ``'red'`` for a label known to be
        noisy, ``'green'`` for one known to be clean, ``'black'`` where the
        truth is unknown.
    """
    text = (f"#{row['rank']} {row['given_class']} -> {row['pred_class']}\n"
            f"p(given) {row['p_given']:.3g}")
    if 'is_noisy' not in row:
        return text, 'black'
    if row['is_noisy']:
        return f"{text}\nNOISY (clean: {row['clean_class']})", 'red'
    return f'{text}\nclean label', 'green'


def plot_suspects(path: str, rows: List[dict], top_k: int) -> None:
    """Save a grid of the ``top_k`` most suspect images.

    Args:
        path (str): Output PNG.
        rows (list[dict]): Ranked rows with ``img_path``.
        top_k (int): Number of images.
    """
    import cv2
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    shown = rows[:top_k]
    cols = min(5, max(1, len(shown)))
    lines = -(-len(shown) // cols) or 1
    fig, axes = plt.subplots(
        lines, cols, figsize=(2.2 * cols, 2.6 * lines), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, row in zip(axes.flat, shown):
        img = cv2.imread(row['img_path'], cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(
                f"cannot read image {row['img_path']!r} of training sample "
                f"{row['sample_idx']}: the file is missing or not an image; "
                'check the data root of the config.')
        ax.imshow(img[..., ::-1])
        caption, color = suspect_caption(row)
        ax.set_title(caption, fontsize=8, color=color)
    fig.suptitle(
        'Most suspect training labels (given -> predicted, probability of '
        'the given label)',
        fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Score the training split and write the report.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        dict: The content of ``summary.json``.
    """
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config} not found.')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = build_model(cfg, device)
    load_weights(model, args.checkpoint, args.config)
    dataset = DATASETS.build(scoring_dataset_cfg(cfg))
    classes = list(dataset.metainfo.get('classes') or [])
    info = sample_info(dataset)
    if info.get('train_label') is None:
        raise KeyError(f'{type(dataset).__name__} does not give gt_label in '
                       'get_data_info(); the report needs the training '
                       'labels.')
    print(f'Scoring {len(dataset)} training samples (test pipeline) with '
          f'{args.checkpoint}')
    loader = build_loader(dataset, range(len(dataset)), args.batch_size,
                          args.num_workers)
    probs = predict_probabilities(model, loader, progress=True)
    rows = build_rows(info, probs, args.score, args.threshold, classes)
    known = info.get('is_noisy') is not None and 'is_noisy' in rows[0]

    os.makedirs(args.out, exist_ok=True)
    write_csv(
        osp.join(args.out, 'label_issues.csv'), rows,
        CSV_COLUMNS + (TRUTH_COLUMNS if known else ()))
    per_class = class_summary(rows, classes)
    write_csv(
        osp.join(args.out, 'class_summary.csv'), per_class,
        tuple(per_class[0]) if per_class else ('class_label', ))
    if args.top_k > 0:
        plot_suspects(osp.join(args.out, 'suspects.png'), rows, args.top_k)

    summary = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        split='train',
        pipeline='test',
        score=args.score,
        threshold=args.threshold,
        num_samples=len(rows),
        num_flagged=sum(r['flagged'] for r in rows))
    if known and info['is_noisy'].any():
        metrics = noise_detection_metrics(
            label_scores(probs, info['train_label'], args.score),
            info['is_noisy'], args.threshold, probs.argmax(axis=1),
            info['train_label'])
        summary['num_noisy'] = metrics['num_noisy']
        summary['metrics'] = {k: metrics[k] for k in NOISE_METRIC_KEYS}
    with open(osp.join(args.out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    _print_summary(summary, per_class, args.out)
    return summary


def _print_summary(summary: dict, per_class: List[dict], out: str) -> None:
    print(f"\n{summary['num_flagged']} of {summary['num_samples']} training "
          f"labels flagged ({summary['score']} < {summary['threshold']}).")
    if 'metrics' in summary:
        print(f"Known noise ({summary['num_noisy']} flipped labels): " +
              ', '.join(f'{k} {v:.4f}'
                        for k, v in summary['metrics'].items()))
    print(f'{"class":<12}{"samples":>8}{"flagged":>8}{"mean p_given":>14}')
    for c in per_class:
        print(f"{c['class_name']:<12}{c['num_samples']:>8}"
              f"{c['num_flagged']:>8}{c['mean_p_given']:>14.4f}")
    print(f'Report written to {out}/ (label_issues.csv, class_summary.csv, '
          'suspects.png, summary.json)')


if __name__ == '__main__':
    main()
