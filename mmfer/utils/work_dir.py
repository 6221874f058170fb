# Copyright (c) OpenMMLab. All rights reserved.
import glob
import os.path as osp


def check_fresh_work_dir(work_dir: str, resume) -> None:
    """Refuse to start a new run over an earlier run's checkpoints.

    mmengine writes ``epoch_N.pth`` and ``last_checkpoint`` into
    ``work_dir`` and would silently replace the files of an earlier run.

    Args:
        work_dir (str): The run's work directory.
        resume (bool | str | None): The ``--resume`` value; resuming an
            existing run is allowed.
    """
    if resume or not osp.isdir(work_dir):
        return
    found = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        found.append(osp.join(work_dir, 'last_checkpoint'))
    if found:
        names = ', '.join(osp.basename(f) for f in found[:4])
        raise FileExistsError(
            f'work_dir {work_dir} already holds checkpoints of an earlier run '
            f'({names}). Pass --resume to continue that run, or --work-dir '
            'with a new folder to start another; nothing was overwritten.')
