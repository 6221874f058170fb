# Copyright (c) OpenMMLab. All rights reserved.
"""Fix 1, safe checkpoint loading: torch >= 2.6 loads with
``weights_only=True``, which rejects mmengine's training checkpoints.

Probe: :func:`torch.load` refuses an unknown class by default (checked on
an in-memory buffer). Fix: mmengine's ``CheckpointLoader`` loads local paths
with :func:`load_from_local`, which allows exactly what mmengine's message
hub holds and anything else only with ``MMFER_ALLOW_PICKLE=1``.
"""
import importlib
import io
import logging
import os.path as osp
import pickle
import re
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .allow_pickle import ALLOW_PICKLE_ENV, pickle_allowed
from .patching import is_patched, mark, save_original


class _LoadProbe:
    """A class that no ``weights_only`` allow-list knows."""


def torch_load_defaults_to_weights_only() -> bool:
    """Probe whether :func:`torch.load` refuses arbitrary globals by default.

    True on torch >= 2.6 unless ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is set
    (torch's own opt-in to full unpickling). Only an object this function
    pickled itself is loaded.

    Returns:
        bool: Whether mmengine's ``torch.load(filename, map_location)``
        rejects mmengine's own training checkpoints.
    """
    buffer = io.BytesIO()
    torch.save(_LoadProbe(), buffer)
    buffer.seek(0)
    try:
        with warnings.catch_warnings():
            # torch warns that TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD applies;
            # that is what is probed, not a load of the user's.
            warnings.simplefilter('ignore', UserWarning)
            torch.load(buffer)
    except pickle.UnpicklingError:
        return True
    return False


def _numpy_multiarray() -> Any:
    try:
        return importlib.import_module('numpy._core.multiarray')
    except ImportError:  # numpy < 2
        return importlib.import_module('numpy.core.multiarray')


def checkpoint_safe_globals() -> List[Any]:
    """The globals mmengine's training checkpoints need besides tensors.

    ``message_hub.log_scalars`` holds :class:`HistoryBuffer` objects with
    float64/int64 arrays and ``message_hub.runtime_info['eta']`` is a
    float64 scalar. None of these can call code: ``_reconstruct`` and
    ``scalar`` only build arrays and scalars of allow-listed types.
    Arrays are allowed under their numpy >= 2 and numpy < 2 names, so
    checkpoints written with either load.

    Returns:
        list: Objects and ``(object, pickled name)`` pairs for
        :class:`torch.serialization.safe_globals`.
    """
    multiarray = _numpy_multiarray()
    dtype_classes = [type(np.dtype(np.float64)), type(np.dtype(np.int64))]
    allowed: List[Any] = [(HistoryBuffer,
                           'mmengine.logging.history_buffer.HistoryBuffer'),
                          (np.ndarray, 'numpy.ndarray'),
                          (np.dtype, 'numpy.dtype')]
    allowed += [(cls, f'numpy.dtypes.{cls.__name__}') for cls in dtype_classes]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    return allowed


@contextmanager
def _checkpoint_globals_allowed() -> Iterator[None]:
    """Allow :func:`checkpoint_safe_globals` for the ``with`` block only.

    Entries the user allowed already are left out, so that leaving the
    block does not remove them.
    """
    present = set(torch.serialization.get_safe_globals())
    extra = [g for g in checkpoint_safe_globals() if g not in present]
    with torch.serialization.safe_globals(extra):
        yield


def _weights_only_reason(err: BaseException) -> str:
    """Pick the refused global, or the one informative line, out of
    torch's long error message."""
    text = str(err)
    for pattern in (r"but got <class '([^']+)'>",
                    r'Unsupported global: GLOBAL (\S+)'):
        match = re.search(pattern, text)
        if match:
            return f'`{match.group(1)}`'
    rest = text.partition('WeightsUnpickler error:')[2] or text
    lines = [line.strip() for line in rest.splitlines() if line.strip()]
    return lines[0] if lines else repr(err)


def _refused_globals(filename: str, err: BaseException) -> str:
    """Name the globals that make ``filename`` not weights-only.

    Args:
        filename (str): The checkpoint torch refused.
        err (BaseException): torch's error.

    Returns:
        str: The pickled names of the offending globals, or torch's reason
        where they cannot be listed (legacy, non-zip files; classes that
        are only built while unpickling).
    """
    try:
        with _checkpoint_globals_allowed():
            names = torch.serialization.get_unsafe_globals_in_checkpoint(
                filename)
    except (ValueError, RuntimeError, OSError):
        names = []
    if names:
        return ', '.join(f'`{name}`' for name in sorted(names))
    return _weights_only_reason(err)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that needs full unpickling, without the user's opt-in."""


def load_from_local(filename: str,
                    map_location: Optional[Union[str, Callable,
                                                 torch.device]] = None):
    """Load a local checkpoint with ``weights_only=True``.

    mmengine 0.10.7 ``runner/checkpoint.py:347`` (``load_from_local``) calls
    ``torch.load(filename, map_location)``, which on torch >= 2.6 means
    ``weights_only=True`` with torch's allow-list only, which lacks what
    mmengine stores in ``message_hub``. This loader adds exactly those
    classes (:func:`checkpoint_safe_globals`), so training checkpoints
    written with the plain ``HistoryBuffer`` state of this module load
    safely, as plain state dicts always did.

    A file that needs anything else (e.g. ``builtins.getattr`` in a
    checkpoint written by mmengine without that fix) is refused unless
    ``MMFER_ALLOW_PICKLE=1`` is set (``--allow-pickle`` of mmfer's
    ``tools/train.py`` and ``tools/test.py``); then it is unpickled fully,
    with a warning naming the file. Only local paths reach this loader; the
    ``http(s)://`` and other schemes keep mmengine's loaders.

    Args:
        filename (str): Local checkpoint path; ``~`` is expanded.
        map_location (str | Callable | torch.device, optional): Same as
            :func:`torch.load`. Defaults to None.

    Returns:
        dict or OrderedDict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` is not an existing file.
        UnsafeCheckpointError: If the file needs full unpickling and
            ``MMFER_ALLOW_PICKLE`` is not set.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint {filename} can not be found. For the face-'
            'pretrained backbones of the configs (checkpoints/*_mmpretrain'
            '.pth), docs/pretrained.md says where to download each file and '
            'how to convert it with tools/model_converters/'
            'face_weights_to_mmpretrain.py; or fix the path in the config.')
    try:
        with _checkpoint_globals_allowed():
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_globals(filename, err)
        if not pickle_allowed():
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint {filename}: it needs the '
                f'global(s) {refused}, which torch.load(weights_only=True) '
                'does not allow because unpickling them can run arbitrary '
                'code. Checkpoints written by mmfer do not need them; older '
                'ones and other tools\' files may. If you trust this file, '
                f'set {ALLOW_PICKLE_ENV}=1 (or pass --allow-pickle to '
                'tools/train.py or tools/test.py) to unpickle it fully.'
            ) from None
        print_log(
            f'Checkpoint {filename} is not loadable with '
            f'torch.load(weights_only=True) (it needs {refused}); unpickling '
            f'it fully because {ALLOW_PICKLE_ENV} is set. This runs any code '
            'the file holds.',
            logger='current',
            level=logging.WARNING)
        return torch.load(
            filename, map_location=map_location, weights_only=False)


mark(load_from_local)


def patch_checkpoint_loader() -> bool:
    """Register :func:`load_from_local` for local paths in mmengine's
    ``CheckpointLoader`` (the ``''`` scheme) where torch loads weights-only
    by default.

    Returns:
        bool: Whether the patch is in place.
    """
    current = CheckpointLoader._schemes.get('')
    if is_patched(current):
        return True
    if not torch_load_defaults_to_weights_only():
        return False
    save_original('mmengine.runner.checkpoint.load_from_local', current)
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    return True
