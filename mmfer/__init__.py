# Copyright (c) OpenMMLab. All rights reserved.
"""mmfer: facial expression recognition under noisy labels for OpenMMLab.

Importing the package checks the installed stack, silences mmcv-lite's ops
warning, and arranges that, as soon as mmengine, mmcv and mmpretrain are
imported (at once for those that are), the compatibility fixes of
:mod:`mmfer.utils.compat` are applied and mmpretrain's registries find
every mmfer component. It imports none of them itself, so it is cheap;
``mmfer.models``, ``mmfer.apis``, ... import on first use.
"""
import importlib

from .utils.mmcv_lite import silence_ops_warning
from .utils.version_check import check_stack

silence_ops_warning()
check_stack()

from .utils.compat import (apply_compat_patches,  # noqa: E402
                           apply_compat_patches_on_import)
from .utils.registration import register_on_import  # noqa: E402
from .version import __version__, version_info  # noqa: E402

apply_compat_patches_on_import()
register_on_import()

_SUBPACKAGES = ('apis', 'datasets', 'engine', 'evaluation', 'models',
                'registry', 'synthfer', 'utils', 'visualization')


def __getattr__(name: str):
    """Import ``mmfer.<name>`` when it is first used as an attribute, as
    ``import mmfer`` no longer imports it."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['__version__', 'version_info', 'apply_compat_patches']
