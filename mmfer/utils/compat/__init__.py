# Copyright (c) OpenMMLab. All rights reserved.
"""Gated run-time fixes for mmengine 0.10.7 / mmcv 2.2.0 on newer dependencies.

mmfer is tested on torch 2.14, numpy 2, setuptools >= 82 and mmengine
0.10.7, which was released before them. Each fix below, in its own module
with its probe, is applied only where the probe of the installed packages
shows the defect, so that a process that imports mmfer and uses none of its
components behaves as before except for these fixes (defect -> probe):

1. :mod:`.checkpoint_loading`: torch >= 2.6 loads with
   ``weights_only=True``, which rejects mmengine's training checkpoints
   -> :func:`torch.load` refuses an unknown class by default.
2. :mod:`.history_buffer`: ``HistoryBuffer.__getstate__`` pickles
   functions through ``builtins.getattr`` -> its state holds
   ``statistics_methods``.
3. :mod:`.package_utils`: mmengine imports ``pkg_resources``, which
   setuptools >= 82 removed -> ``pkg_resources`` cannot be found.
4. :mod:`.hue_shift`: ``mmcv.adjust_hue`` overflows for negative factors
   under numpy 2 -> a negative factor raises ``OverflowError``.
5. :mod:`.atomic_checkpoints`: mmengine truncates the old ``epoch_N.pth``
   and ``last_checkpoint`` before writing -> ``LocalBackend`` writes in
   place; ``CheckpointHook``'s module calls ``open`` for writing.
6. :mod:`.tight_bbox`: mmpretrain's stock ``browse_dataset.py`` calls
   matplotlib's ``adjust_bbox`` without the ``renderer`` matplotlib >= 3.11
   requires -> its ``renderer`` parameter has no default.
7. :mod:`.unused_file_client`: ``save_checkpoint`` and ``CheckpointHook``
   build an unused ``FileClient``, logging two deprecation warnings on
   every run -> they call ``FileClient.infer_client``.

:mod:`.allow_pickle` holds the user's opt-in that fix 1 reads. Every patch
is safe to call repeatedly; the objects it replaces are kept and returned
by :func:`get_original`. No probe reads or writes a file.

``import mmfer`` calls :func:`apply_compat_patches_on_import`, which applies
each fix when the package it patches has been imported (at once if it has
been), so that importing mmfer itself imports none of them.
"""
import importlib
from typing import List, Tuple

from ..import_hooks import when_imported
from .allow_pickle import (ALLOW_PICKLE_ENV, add_allow_pickle_argument,
                           pickle_allowed)
from .patching import get_original

# (name, module of the fix, ((package whose import completes what the
# patch replaces, patch function), ...)), in the order of the table above.
_FIXES: Tuple[Tuple[str, str, Tuple[Tuple[str, str], ...]], ...] = (
    ('safe checkpoint loading', 'checkpoint_loading',
     (('mmengine.runner', 'patch_checkpoint_loader'), )),
    ('plain HistoryBuffer state', 'history_buffer',
     (('mmengine', 'patch_history_buffer_state'), )),
    ('package helpers', 'package_utils',
     (('mmengine', 'patch_package_utils'), )),
    ('hue shift', 'hue_shift', (('mmcv', 'patch_adjust_hue'), )),
    ('atomic checkpoint writes', 'atomic_checkpoints',
     (('mmengine', 'patch_local_backend'),
      ('mmengine.hooks', 'patch_checkpoint_hook'))),
    ('figure trimming', 'tight_bbox',
     (('matplotlib._tight_bbox', 'patch_adjust_bbox'), )),
    ('quiet checkpoints', 'unused_file_client',
     (('mmengine.hooks', 'patch_unused_file_clients'), )),
)


def _patch(module: str, function: str) -> bool:
    fix = importlib.import_module(f'{__name__}.{module}')
    return getattr(fix, function)()


def apply_compat_patches() -> List[str]:
    """Apply every mmfer fix whose defect the installed packages have,
    now; calling it again is a no-op.

    Returns:
        list[str]: Names of the fixes in place, in the order of the table
        in this module's docstring.
    """
    # Import the patched packages first: the import hooks of
    # apply_compat_patches_on_import then run while no fix module is half
    # imported (a fix module importing its package would otherwise trigger
    # its own hook before it has its patch function).
    for _, _, patches in _FIXES:
        for package, _ in patches:
            importlib.import_module(package)
    applied = []
    for name, module, patches in _FIXES:
        # A list, not a generator: any() would skip the fix's other patches.
        results = [_patch(module, function) for _, function in patches]
        if any(results):
            applied.append(name)
    return applied


def apply_compat_patches_on_import() -> None:
    """Apply each fix as soon as the package it patches has been imported.

    A fix whose package is imported already is applied now; the others
    right after their package's ``import`` has run, before any of its
    objects can be used. Used by ``import mmfer``, which so imports none of
    torch, mmengine and mmcv itself.
    """
    for _, module, patches in _FIXES:
        for package, function in patches:
            when_imported(
                package,
                lambda _, module=module, function=function: _patch(
                    module, function))


__all__ = [
    'ALLOW_PICKLE_ENV', 'add_allow_pickle_argument', 'apply_compat_patches',
    'apply_compat_patches_on_import', 'get_original', 'pickle_allowed'
]
