# Copyright (c) OpenMMLab. All rights reserved.
import glob
import os.path as osp

# `--resume` with no checkpoint: the latest in the work dir, which must exist;
# `--resume auto`: the latest if there is one, else a fresh start.
RESUME_LATEST = 'latest'
RESUME_AUTO = 'auto'


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


def latest_checkpoint(work_dir: str) -> str:
    """The checkpoint ``last_checkpoint`` in ``work_dir`` names, or ''.

    Args:
        work_dir (str): A run's work directory.

    Returns:
        str: The checkpoint path if the pointer and its file exist, else
        an empty string.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return ''
    with open(pointer) as f:
        path = f.read().strip()
    return path if path and osp.isfile(path) else ''


def check_resumable(work_dir: str, resume: str) -> bool:
    """Decide whether ``--resume`` without a checkpoint file can resume.

    Args:
        work_dir (str): The run's work directory.
        resume (str): :data:`RESUME_LATEST` (resume, and refuse when there
            is nothing to resume) or :data:`RESUME_AUTO` (resume if there is
            something, else start afresh).

    Returns:
        bool: Whether the run resumes.

    Raises:
        FileNotFoundError: For :data:`RESUME_LATEST` when ``work_dir`` holds
            no checkpoint, naming the folder: a mistyped ``--work-dir``
            would otherwise restart the run silently.
    """
    if latest_checkpoint(work_dir):
        return True
    if resume == RESUME_AUTO:
        return False
    raise FileNotFoundError(
        f'--resume: {osp.abspath(work_dir)} holds no checkpoint to resume '
        '(no last_checkpoint naming an existing file). Check --work-dir, '
        'pass the checkpoint itself (--resume PATH), or use --resume auto '
        'to start afresh when there is nothing to resume.')
