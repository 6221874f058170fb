# Copyright (c) OpenMMLab. All rights reserved.
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop
from mmpretrain.registry import HOOKS

from mmfer.utils.atomic_io import atomic_write_text

TOP1 = 'accuracy/top1'
MEAN_CLASS = 'single-label/recall'
CONFUSION = 'confusion_matrix/result'
UNIT_WORDS = dict(epoch='epoch', iter='iteration')


def progress_unit(runner) -> str:
    """How the runner's training loop counts progress.

    Args:
        runner (Runner): The runner.

    Returns:
        str: ``'iter'`` under an ``IterBasedTrainLoop``, else ``'epoch'``
        (also when no training loop was built, e.g. ``runner.val()``).
    """
    loop = getattr(runner, '_train_loop', None)
    return 'iter' if isinstance(loop, IterBasedTrainLoop) else 'epoch'


def format_confusion(matrix, classes: Sequence[str]) -> str:
    """Render a confusion matrix (rows: true class) as a text table.

    Args:
        matrix (Tensor | ndarray): ``(C, C)`` counts.
        classes (Sequence[str]): Class names.

    Returns:
        str: The table.
    """
    rows = [[int(v) for v in row] for row in matrix.tolist()]
    names = [c[:9] for c in classes] if classes else [
        str(i) for i in range(len(rows))
    ]
    width = max(9, *(len(str(v)) for row in rows for v in row))
    head = 'true\\pred'.ljust(10) + ''.join(n.rjust(width + 1) for n in names)
    lines = [head] + [
        names[i].ljust(10) + ''.join(str(v).rjust(width + 1) for v in row)
        for i, row in enumerate(rows)
    ]
    return '\n'.join(lines)


def drop_logged_confusion(runner, mode: str) -> None:
    """Keep the confusion matrix out of the evaluation's log line.

    mmengine's ``RuntimeInfoHook`` puts every non-scalar metric into the
    message hub, and the ``LoggerHook`` prints it inline (a multi-line
    tensor). The matrix goes to the confusion PNG and the test table
    instead.

    Args:
        runner (Runner): The runner.
        mode (str): ``'val'`` or ``'test'``.
    """
    hub = getattr(runner, 'message_hub', None)
    if hub is not None:
        hub.pop_info(f'{mode}/{CONFUSION}', None)


@HOOKS.register_module()
class FERReportHook(Hook):
    """Report FER accuracy honestly.

    FER benchmarks have no validation split, so the test split is evaluated
    during training. The headline is the **last evaluation's** test
    accuracy; the best evaluation is shown separately and labelled, since
    picking it uses the test labels. ``<work_dir>/fer_results.json`` is
    updated after every evaluation and both go to the log at the end of
    training; the history survives ``--resume``.

    Evaluations are keyed by the training progress they were made at: the
    number of finished epochs (key ``'epoch'``) under an
    ``EpochBasedTrainLoop``, the number of finished iterations (key
    ``'iter'``) under an ``IterBasedTrainLoop``. The file holds ``unit``
    (that key), ``headline`` (``'last_epoch'`` or ``'last_iter'``), the last
    and the best record under ``last_<unit>`` and ``best_<unit>``, and the
    ``history``. Each record holds its key, ``top1`` and, when the
    evaluator computes it, ``mean_class_acc``.

    When the evaluator has a ``ConfusionMatrix`` metric, the last
    evaluation's matrix (the headline's) is drawn with the class names to
    ``<work_dir>/<confusion_file>`` at the end of training, and a test run
    logs it as a table with the class names. The raw matrix is kept out of
    the one-line evaluation log (mmengine would print the tensor inline):
    the hook runs before the ``LoggerHook`` (priority ``NORMAL``) and takes
    it out of the message hub.

    Args:
        out_file (str): File name under ``work_dir`` for the summary.
            Defaults to ``'fer_results.json'``.
        confusion_file (str): File name under ``work_dir`` for the
            confusion matrix PNG. Defaults to ``'confusion_matrix.png'``.
    """

    # Before LoggerHook (BELOW_NORMAL), which logs what the hub holds.
    priority = 'NORMAL'

    def __init__(self,
                 out_file: str = 'fer_results.json',
                 confusion_file: str = 'confusion_matrix.png') -> None:
        self.out_file = out_file
        self.confusion_file = confusion_file
        self.history: List[Dict[str, float]] = []
        self.last_confusion = None

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        """Record this evaluation's test metrics and update the file.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): Evaluation results.
        """
        drop_logged_confusion(runner, 'val')
        if not metrics or TOP1 not in metrics:
            return
        unit = progress_unit(runner)
        done = runner.iter if unit == 'iter' else runner.epoch
        record = {unit: done, 'top1': float(metrics[TOP1])}
        if MEAN_CLASS in metrics:
            record['mean_class_acc'] = float(metrics[MEAN_CLASS])
        self.history = [r for r in self.history if r[unit] < done]
        self.history.append(record)
        self.last_confusion = metrics.get(CONFUSION)
        self._dump(runner)

    def after_train(self, runner) -> None:
        """Log the last-evaluation headline and the best evaluation.

        Args:
            runner (Runner): The runner.
        """
        if not self.history:
            return
        unit = progress_unit(runner)
        summary = self._dump(runner)
        word = UNIT_WORDS[unit]
        runner.logger.info(
            f'FER result -- headline = LAST {word} on the test split: '
            f'{self._describe(summary[f"last_{unit}"], unit)}. Best {word} '
            '(selected on the test split, optimistic, reference only): '
            f'{self._describe(summary[f"best_{unit}"], unit)}.')
        if self.last_confusion is not None and runner.rank == 0:
            self._save_confusion(runner, summary[f'last_{unit}'], unit)

    def _save_confusion(self, runner, record: Dict[str, float],
                        unit: str) -> None:
        """Draw the last evaluation's confusion matrix with class names."""
        # Imported here: matplotlib is only needed once, at the end of a
        # run, not by every process that registers mmfer's hooks.
        from mmfer.visualization.drawing import save_confusion_png
        dataset = runner.val_dataloader.dataset
        classes = getattr(dataset, 'metainfo', {}).get('classes')
        path = osp.join(runner.work_dir, self.confusion_file)
        save_confusion_png(
            self.last_confusion, classes, path,
            f'Test confusion matrix, last {UNIT_WORDS[unit]} '
            f'({self._describe(record, unit)})')
        runner.logger.info(f'Confusion matrix of the last evaluation saved '
                           f'to {path}.')

    def _dump(self, runner) -> dict:
        unit = progress_unit(runner)
        summary = {
            'unit': unit,
            'headline': f'last_{unit}',
            f'last_{unit}': self.history[-1],
            f'best_{unit}': max(self.history, key=lambda r: r['top1']),
            'history': self.history,
        }
        if runner.rank == 0:
            atomic_write_text(
                osp.join(runner.work_dir, self.out_file),
                json.dumps(summary, indent=2))
        return summary

    def after_test_epoch(self,
                         runner,
                         metrics: Optional[Dict[str, float]] = None) -> None:
        """Log the test metrics with a named confusion matrix.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): Evaluation results.
        """
        drop_logged_confusion(runner, 'test')
        if not metrics:
            return
        parts = []
        if TOP1 in metrics:
            parts.append(f'top-1 {float(metrics[TOP1]):.2f}%')
        if MEAN_CLASS in metrics:
            parts.append(
                f'mean per-class accuracy {float(metrics[MEAN_CLASS]):.2f}%')
        text = 'FER test: ' + ', '.join(parts)
        if CONFUSION in metrics:
            classes = runner.test_dataloader.dataset.metainfo.get('classes')
            text += '\nconfusion matrix (rows: true class):\n' + \
                format_confusion(metrics[CONFUSION], classes)
        runner.logger.info(text)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the evaluation history in the checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint being saved.
        """
        checkpoint['fer_report_history'] = list(self.history)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the history when resuming (not for ``load_from``).

        A checkpoint is saved before the evaluation at its epoch or
        iteration, so that evaluation's record comes from the results file
        of the interrupted run. Records the run made after the checkpoint
        are dropped: the resumed run makes them again.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        if not getattr(runner, '_resume', False):
            return
        unit = progress_unit(runner)
        done = checkpoint.get('meta', {}).get(unit, 0)
        records = {
            r[unit]: r
            for r in checkpoint.get('fer_report_history', []) if unit in r
        }
        path = osp.join(runner.work_dir, self.out_file)
        if osp.isfile(path):
            with open(path) as f:
                for record in json.load(f).get('history', []):
                    if unit in record:
                        records.setdefault(record[unit], record)
        self.history = [records[k] for k in sorted(records) if k <= done]

    @staticmethod
    def _describe(record: Dict[str, float], unit: str) -> str:
        text = (f'{UNIT_WORDS[unit]} {record[unit]}: '
                f'top-1 {record["top1"]:.2f}%')
        if 'mean_class_acc' in record:
            text += (', mean per-class accuracy '
                     f'{record["mean_class_acc"]:.2f}%')
        return text
