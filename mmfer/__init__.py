# Copyright (c) OpenMMLab. All rights reserved.
"""mmfer: facial expression recognition under noisy labels for OpenMMLab.

Importing the package checks the installed stack, applies the compatibility
fixes of :mod:`mmfer.utils.compat` and registers every mmfer component into
mmpretrain's registries.
"""
from .utils.version_check import check_stack

check_stack()

from .utils.compat import apply_compat_patches  # noqa: E402

apply_compat_patches()

from . import datasets, evaluation, engine, models  # noqa: E402,F401
from .version import __version__, version_info  # noqa: E402

__all__ = ['__version__', 'version_info', 'apply_compat_patches']
