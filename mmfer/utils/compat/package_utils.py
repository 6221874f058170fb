# Copyright (c) OpenMMLab. All rights reserved.
"""Fix 3, package helpers without ``pkg_resources``: mmengine imports
``pkg_resources``, which setuptools >= 82 removed, so
``_base_ = 'mmpretrain::...'`` fails.

Probe: ``pkg_resources`` cannot be found. Fix: mmengine's ``is_installed``,
``get_installed_path`` and ``package2module`` are replaced, wherever they
are bound, by versions built on :mod:`importlib.metadata`.
"""
import importlib
import importlib.metadata as importlib_metadata
import importlib.util
import os.path as osp
from typing import Any, Optional

from .patching import is_patched, mark, rebind_everywhere, save_original


def _distribution(package: str) -> Optional[importlib_metadata.Distribution]:
    try:
        return importlib_metadata.distribution(package)
    except (importlib_metadata.PackageNotFoundError, ValueError):
        return None


def _find_spec(name: str) -> Optional[Any]:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        # e.g. a distribution name such as 'mmcv-lite' is no module name.
        return None


@mark
def package2module(package: str) -> str:
    """Infer the top-level module name of an installed distribution.

    Replaces mmengine 0.10.7 ``utils/package_utils.py:80``, which imports
    ``pkg_resources``.

    Args:
        package (str): Distribution name, e.g. ``'mmcv-lite'``.

    Returns:
        str: The module name, e.g. ``'mmcv'``.

    Raises:
        importlib.metadata.PackageNotFoundError: If ``package`` is not
            installed.
        ValueError: If the module name cannot be inferred.
    """
    dist = importlib_metadata.distribution(package)
    top_level = dist.read_text('top_level.txt')
    if top_level and top_level.strip():
        return top_level.strip().split('\n')[0].strip()
    # Wheels built without setuptools have no top_level.txt.
    for module, dists in importlib_metadata.packages_distributions().items():
        if dist.metadata['Name'] in dists and module.isidentifier():
            return module
    raise ValueError(f'can not infer the module name of {package}')


@mark
def is_installed(package: str) -> bool:
    """Check whether a package is installed, without ``pkg_resources``.

    Replaces mmengine 0.10.7 ``utils/package_utils.py:6``, which imports
    ``pkg_resources``; setuptools >= 82 no longer ships it, which breaks
    ``_base_ = 'mmpretrain::...'`` in ``Config.fromfile``.

    Args:
        package (str): Distribution or module name.

    Returns:
        bool: Whether it is installed or importable (not as a namespace
        package).
    """
    # mmengine reloaded pkg_resources to see packages installed by
    # ``install_package`` in this process; importlib needs its finder
    # caches cleared for the same.
    importlib.invalidate_caches()
    if _distribution(package) is not None:
        return True
    spec = _find_spec(package)
    return spec is not None and spec.origin is not None


@mark
def get_installed_path(package: str) -> str:
    """Get the directory of an installed package, without ``pkg_resources``.

    Replaces mmengine 0.10.7 ``utils/package_utils.py:36``. The module is
    located with ``importlib.util.find_spec`` so that editable installs and
    ``PYTHONPATH`` entries resolve to the directory actually imported.

    Args:
        package (str): Distribution or module name, e.g. ``'mmpretrain'``.

    Returns:
        str: The package directory, e.g. ``'.../site-packages/mmpretrain'``.

    Raises:
        importlib.metadata.PackageNotFoundError: If it is neither installed
            nor importable.
        RuntimeError: If it is a namespace package.
    """
    spec = _find_spec(package)
    dist = _distribution(package)
    if spec is None and dist is not None:
        try:
            spec = _find_spec(package2module(package))
        except ValueError:
            spec = None
    if spec is not None:
        if spec.origin is None:
            raise RuntimeError(
                f'{package} is a namespace package, which is invalid '
                'for `get_install_path`')
        return osp.dirname(spec.origin)
    if dist is None:
        raise importlib_metadata.PackageNotFoundError(package)
    location = str(dist.locate_file(''))
    possible_path = osp.join(location, package)
    if osp.exists(possible_path):
        return possible_path
    return osp.join(location, package2module(package))


def pkg_resources_missing() -> bool:
    """Probe whether ``import pkg_resources`` fails (setuptools >= 82).

    Returns:
        bool: Whether mmengine's package helpers cannot work.
    """
    try:
        return importlib.util.find_spec('pkg_resources') is None
    except ValueError:  # imported already, by a finder that sets no spec
        return False


def patch_package_utils() -> bool:
    """Replace mmengine's ``pkg_resources``-based package helpers everywhere
    they are bound (``mmengine.utils``, ``mmengine.utils.package_utils``,
    ``mmengine.config.config``, ...) where ``pkg_resources`` is missing.

    Returns:
        bool: Whether the patch is in place.
    """
    package_utils = importlib.import_module('mmengine.utils.package_utils')
    applied = is_patched(package_utils.is_installed)
    if not applied and not pkg_resources_missing():
        return False
    for name, patched in (('is_installed', is_installed),
                          ('get_installed_path', get_installed_path),
                          ('package2module', package2module)):
        original = save_original(f'mmengine.utils.package_utils.{name}',
                                 getattr(package_utils, name))
        setattr(package_utils, name, patched)
        # Also rebinds modules imported since the last call.
        rebind_everywhere(original, patched)
    return True
