# Copyright (c) OpenMMLab. All rights reserved.
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from mmfer.utils.atomic_io import atomic_write_text

TOP1 = 'accuracy/top1'
MEAN_CLASS = 'single-label/recall'
CONFUSION = 'confusion_matrix/result'


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


@HOOKS.register_module()
class FERReportHook(Hook):
    """Report FER accuracy honestly.

    FER benchmarks have no validation split, so the test split is evaluated
    after every epoch. The headline is the **last epoch's** test accuracy;
    the best epoch is shown separately and labelled, since picking it uses
    the test labels. ``<work_dir>/fer_results.json`` is updated after every
    evaluation and both go to the log at the end of training; the per-epoch
    history survives ``--resume``.

    Args:
        out_file (str): File name under ``work_dir`` for the summary.
            Defaults to ``'fer_results.json'``.
    """

    priority = 'LOW'

    def __init__(self, out_file: str = 'fer_results.json') -> None:
        self.out_file = out_file
        self.history: List[Dict[str, float]] = []

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        """Record this epoch's test metrics and update the results file.

        Args:
            runner (Runner): The runner.
            metrics (dict, optional): Evaluation results.
        """
        if not metrics or TOP1 not in metrics:
            return
        record = dict(epoch=runner.epoch, top1=float(metrics[TOP1]))
        if MEAN_CLASS in metrics:
            record['mean_class_acc'] = float(metrics[MEAN_CLASS])
        self.history = [r for r in self.history if r['epoch'] < runner.epoch]
        self.history.append(record)
        self._dump(runner)

    def after_train(self, runner) -> None:
        """Log the last-epoch headline and the best epoch.

        Args:
            runner (Runner): The runner.
        """
        if not self.history:
            return
        summary = self._dump(runner)
        runner.logger.info(
            'FER result -- headline = LAST epoch on the test split: '
            f'{self._describe(summary["last_epoch"])}. Best epoch (selected '
            'on the test split, optimistic, reference only): '
            f'{self._describe(summary["best_epoch"])}.')

    def _dump(self, runner) -> dict:
        summary = dict(
            headline='last_epoch',
            last_epoch=self.history[-1],
            best_epoch=max(self.history, key=lambda r: r['top1']),
            history=self.history)
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
        """Keep the per-epoch history in the checkpoint.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint being saved.
        """
        checkpoint['fer_report_history'] = list(self.history)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the history when resuming (not for ``load_from``).

        A checkpoint is saved before its epoch is evaluated, so that epoch's
        record comes from the results file of the interrupted run.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        if not getattr(runner, '_resume', False):
            return
        epoch = checkpoint.get('meta', {}).get('epoch', 0)
        records = {
            r['epoch']: r
            for r in checkpoint.get('fer_report_history', [])
        }
        path = osp.join(runner.work_dir, self.out_file)
        if osp.isfile(path):
            with open(path) as f:
                for record in json.load(f).get('history', []):
                    records.setdefault(record['epoch'], record)
        self.history = [records[e] for e in sorted(records) if e <= epoch]

    @staticmethod
    def _describe(record: Dict[str, float]) -> str:
        text = f'epoch {record["epoch"]}: top-1 {record["top1"]:.2f}%'
        if 'mean_class_acc' in record:
            text += (', mean per-class accuracy '
                     f'{record["mean_class_acc"]:.2f}%')
        return text
