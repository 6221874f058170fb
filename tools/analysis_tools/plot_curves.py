# Copyright (c) OpenMMLab. All rights reserved.
"""Plot training loss and test accuracy per epoch of one or several runs.

Reads each work dir's ``<timestamp>/vis_data/scalars.json`` (mmengine's
log) and ``fer_results.json`` (``FERReportHook``) and draws one figure with
three panels, every run a line in each: the training loss per epoch, the
test top-1 accuracy and the test mean per-class accuracy per evaluation.

The loss of an epoch is the mean of the losses the logger wrote during it.
mmengine logs every ``default_hooks.logger.interval`` iterations the mean
of the last 10 iterations' losses, so this is the epoch's mean loss up to
that smoothing. The latest timestamp folder is the run; when it was resumed
(it starts after epoch 1), the earlier folders fill in the epochs before.
The test accuracy comes from ``fer_results.json`` (which survives
``--resume``) where there is one, else from the log. Runs with an
iteration-based loop are plotted per logged iteration.

Example::

    python tools/analysis_tools/plot_curves.py \\
        work_dirs/demo/baseline_r18_synthfer_noise30 \\
        work_dirs/demo/eac_r18_synthfer_noise30 --out curves.png
"""
import argparse
import glob
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from mmengine.utils import track_iter_progress

TOP1 = 'accuracy/top1'
MEAN_CLASS = 'single-label/recall'
PANELS = (('loss', 'training loss'), ('top1', 'test top-1 accuracy (%)'),
          ('mean_class_acc', 'test mean per-class accuracy (%)'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Plot training loss and test accuracy per epoch of '
        'runs, side by side on one figure.')
    parser.add_argument('work_dirs', nargs='+', help='work dirs of runs')
    parser.add_argument(
        '--out', default='curves.png', help='PNG file (default: curves.png)')
    parser.add_argument(
        '--labels',
        nargs='+',
        help='legend entries, one per work dir (default: config names)')
    return parser.parse_args(argv)


def read_json_lines(path: str) -> List[dict]:
    """The records of an mmengine ``scalars.json`` (one JSON per line)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def log_folders(work_dir: str) -> List[str]:
    """The run's ``vis_data`` folders, oldest first (timestamp names sort
    by time)."""
    pattern = osp.join(work_dir, '*', 'vis_data', 'scalars.json')
    return sorted(osp.dirname(p) for p in glob.glob(pattern))


def train_records(work_dir: str) -> List[dict]:
    """The training records of the latest run, preceded by those of the
    runs it resumed.

    Args:
        work_dir (str): The work dir.

    Returns:
        list[dict]: Records with a ``loss``, in training order.
    """
    records: List[dict] = []
    for folder in reversed(log_folders(work_dir)):
        found = [
            r for r in read_json_lines(osp.join(folder, 'scalars.json'))
            if 'loss' in r
        ]
        if records:
            found = [r for r in found if r['epoch'] < records[0]['epoch']]
        records = found + records
        # iteration-based logs have no epochs to tell a resumed run by
        if not records or records[0].get('epoch', 1) <= 1:
            break
    return records


def loss_curve(records: Sequence[dict]) -> Dict[int, float]:
    """Training loss per epoch, or per logged iteration without epochs.

    Args:
        records (Sequence[dict]): Training records of the log.

    Returns:
        dict[int, float]: ``{epoch or iteration: loss}``.
    """
    if records and 'epoch' not in records[0]:
        return {r['step']: r['loss'] for r in records}
    losses = defaultdict(list)
    for record in records:
        losses[record['epoch']].append(record['loss'])
    return {e: sum(v) / len(v) for e, v in sorted(losses.items())}


def accuracy_curves(work_dir: str) -> Dict[str, Dict[int, float]]:
    """Test top-1 and mean per-class accuracy per evaluation.

    Args:
        work_dir (str): The work dir.

    Returns:
        dict: ``{'top1': {x: acc}, 'mean_class_acc': {x: acc}}``, ``x`` the
        epoch (or iteration) of the evaluation.
    """
    curves = dict(top1={}, mean_class_acc={})
    report = osp.join(work_dir, 'fer_results.json')
    if osp.isfile(report):
        with open(report) as f:
            summary = json.load(f)
        for record in summary.get('history', []):
            x = record[summary.get('unit', 'epoch')]
            for key in curves:
                if key in record:
                    curves[key][x] = record[key]
        return curves
    folders = log_folders(work_dir)
    for folder in folders:  # later runs overwrite the evaluations they redo
        for record in read_json_lines(osp.join(folder, 'scalars.json')):
            if TOP1 in record:
                curves['top1'][record['step']] = record[TOP1]
                if MEAN_CLASS in record:
                    curves['mean_class_acc'][record['step']] = \
                        record[MEAN_CLASS]
    return curves


def read_run(work_dir: str) -> dict:
    """Every curve of one run.

    Args:
        work_dir (str): The work dir.

    Returns:
        dict: ``loss``, ``top1``, ``mean_class_acc`` (each ``{x: y}``) and
        ``unit`` (``'epoch'`` or ``'iteration'``).

    Raises:
        FileNotFoundError: If the work dir holds neither log.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir {work_dir} not found.')
    records = train_records(work_dir)
    run = dict(loss=loss_curve(records), **accuracy_curves(work_dir))
    if not any(run.values()):
        raise FileNotFoundError(
            f'{work_dir} holds no training log: neither '
            '<timestamp>/vis_data/scalars.json (written by mmengine while '
            'training) nor fer_results.json (FERReportHook). Give the '
            'work dir of a training run (--work-dir of tools/train.py).')
    by_epoch = not records or 'epoch' in records[0]
    run['unit'] = 'epoch' if by_epoch else 'iteration'
    return run


def config_name(work_dir: str) -> str:
    """The name of the config a run was trained with.

    mmengine copies the config to ``<work_dir>/<config name>.py``.

    Args:
        work_dir (str): The work dir.

    Returns:
        str: The config's name, or the work dir's where there is none.
    """
    configs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if len(configs) == 1:
        return osp.splitext(osp.basename(configs[0]))[0]
    return osp.basename(osp.normpath(work_dir))


def run_labels(work_dirs: Sequence[str],
               labels: Optional[Sequence[str]]) -> List[str]:
    """Legend entries: the given labels, else the config names, else the
    work dir names where runs share a config name (the methods' SynthFER
    configs do)."""
    if labels:
        if len(labels) != len(work_dirs):
            raise ValueError(f'{len(labels)} --labels for {len(work_dirs)} '
                             'work dirs; give one label per work dir.')
        return list(labels)
    names = [config_name(w) for w in work_dirs]
    if len(set(names)) == len(names):
        return names
    return [osp.basename(osp.normpath(w)) for w in work_dirs]


def plot_runs(runs: Sequence[dict], labels: Sequence[str], out: str) -> None:
    """Draw the runs' curves, one panel per quantity, and save a PNG.

    Args:
        runs (Sequence[dict]): Outputs of :func:`read_run`.
        labels (Sequence[str]): One legend entry per run.
        out (str): The PNG file.
    """
    # matplotlib is imported here, so that --help answers at once.
    from matplotlib.ticker import MaxNLocator

    from mmfer.visualization import new_figure, save_png
    fig = new_figure(5 * len(PANELS), 4)
    units = {run['unit'] for run in runs}
    for i, (key, title) in enumerate(PANELS):
        ax = fig.add_subplot(1, len(PANELS), i + 1)
        for run, label in zip(runs, labels):
            if run[key]:
                xs = sorted(run[key])
                ax.plot(xs, [run[key][x] for x in xs], marker='.',
                        label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(' / '.join(sorted(units)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    save_png(fig, out)


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Read the runs and write the figure.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` if
            ``None``.

    Returns:
        str: The PNG file.
    """
    args = parse_args(argv)
    labels = run_labels(args.work_dirs, args.labels)
    runs = [read_run(w) for w in track_iter_progress(list(args.work_dirs))]
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    plot_runs(runs, labels, args.out)
    return args.out


if __name__ == '__main__':
    main()
