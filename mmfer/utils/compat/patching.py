# Copyright (c) OpenMMLab. All rights reserved.
"""What every fix of :mod:`mmfer.utils.compat` shares: the saved originals
and the marks that make a patch idempotent."""
import sys
from typing import Any, Callable, Dict

# Marks the functions installed by a fix, so that a second call of a patch
# sees its own work and does not wrap it again.
_PATCH_FLAG = '_mmfer_compat'
# Packages whose modules may hold their own reference (``from x import f``)
# to a function that is replaced.
_PATCHED_PACKAGES = ('mmengine', 'mmcv', 'mmpretrain')
# 'module.attribute' -> the object before the first patch.
_ORIGINALS: Dict[str, Any] = {}


def get_original(name: str) -> Any:
    """Return what a patch replaced, as it was before patching.

    Args:
        name (str): Dotted name of the replaced object, e.g.
            ``'mmengine.utils.package_utils.is_installed'``,
            ``'mmcv.image.photometric.adjust_hue'``,
            ``'mmengine.runner.checkpoint.load_from_local'``,
            ``'mmengine.logging.HistoryBuffer.__getstate__'``,
            ``'mmengine.fileio.backends.LocalBackend.put'`` or
            ``'mmengine.hooks.checkpoint_hook.open'``.

    Returns:
        Any: The original object.

    Raises:
        KeyError: If no patch replaced ``name`` (yet).
    """
    return _ORIGINALS[name]


def is_saved(name: str) -> bool:
    """Whether a patch replaced ``name`` in this process.

    Args:
        name (str): Dotted name, as :func:`get_original` takes it.

    Returns:
        bool: True once :func:`save_original` saved it.
    """
    return name in _ORIGINALS


def save_original(name: str, obj: Any) -> Any:
    """Remember ``obj`` as the original of ``name`` unless one is saved.

    Args:
        name (str): Dotted name, as :func:`get_original` takes it.
        obj (Any): The object about to be replaced.

    Returns:
        Any: The saved original (``obj`` on the first call).
    """
    return _ORIGINALS.setdefault(name, obj)


def mark(func: Callable) -> Callable:
    """Flag ``func`` as installed by a fix; returns it."""
    setattr(func, _PATCH_FLAG, True)
    return func


def is_patched(obj: Any) -> bool:
    """Whether ``obj`` was installed by a fix (see :func:`mark`)."""
    return bool(getattr(obj, _PATCH_FLAG, False))


def rebind_everywhere(original: Any, patched: Any) -> None:
    """Replace every module-level reference to ``original``.

    ``from mmengine.utils import is_installed`` copies the function into the
    importing module, so replacing it in its home module is not enough.
    Modules imported later copy the patched object.

    Args:
        original (Any): The object to replace.
        patched (Any): Its replacement.
    """
    for mod_name, module in list(sys.modules.items()):
        package = mod_name.partition('.')[0]
        if module is None or package not in _PATCHED_PACKAGES:
            continue
        namespace = getattr(module, '__dict__', None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if value is original:
                setattr(module, attr, patched)
