# Copyright (c) OpenMMLab. All rights reserved.
"""Fix 6, figure trimming: matplotlib >= 3.11's ``adjust_bbox`` requires a
``renderer``, which mmpretrain's stock ``tools/visualization/
browse_dataset.py`` (``make_grid``) does not pass, so it stops with
``TypeError: adjust_bbox() missing 1 required positional argument:
'renderer'`` in its default and ``-m pipeline`` modes.

Probe: ``matplotlib._tight_bbox.adjust_bbox``'s ``renderer`` parameter has
no default. Fix: give it the default ``None``. The function uses the
renderer only to place axes that have an axes locator (the stock script's
figures have none), and matplotlib's own callers pass one. The function
object is changed in place (its ``__defaults__``), because the stock script
binds the name (``from matplotlib._tight_bbox import adjust_bbox``) before
it reads the config that imports mmfer.
"""
import importlib
import inspect
from typing import Callable

from .patching import is_saved, save_original

ORIGINAL_DEFAULTS = 'matplotlib._tight_bbox.adjust_bbox.__defaults__'


def renderer_is_required(func: Callable) -> bool:
    """Whether ``func`` has a ``renderer`` parameter without a default.

    Args:
        func (Callable): ``adjust_bbox``.

    Returns:
        bool: True where the stock tool's call fails.
    """
    param = inspect.signature(func).parameters.get('renderer')
    return param is not None and param.default is inspect.Parameter.empty


def patch_adjust_bbox() -> bool:
    """Let ``adjust_bbox`` be called without a renderer, where it needs one.

    Returns:
        bool: Whether the patch is in place.
    """
    func = importlib.import_module('matplotlib._tight_bbox').adjust_bbox
    if renderer_is_required(func):
        original = save_original(ORIGINAL_DEFAULTS, func.__defaults__)
        # Defaults cover the trailing parameters: ``renderer`` and those
        # after it, which keep theirs.
        names = list(inspect.signature(func).parameters)
        after = len(names) - names.index('renderer') - 1
        kept = tuple(original or ())[-after:] if after else ()
        func.__defaults__ = (None, ) + kept
    return is_saved(ORIGINAL_DEFAULTS)
