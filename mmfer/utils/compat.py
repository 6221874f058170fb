# Copyright (c) OpenMMLab. All rights reserved.
"""Run-time fixes for mmengine 0.10.7 / mmcv 2.2.0 on newer dependencies.

mmfer is tested on torch 2.14, numpy 2, setuptools >= 82 and mmengine
0.10.7, which was released before them. :func:`apply_compat_patches`
fixes the breakages that affect training and testing with the stock
``tools/train.py`` and ``tools/test.py``:

1. Checkpoint loading with torch >= 2.6 (``weights_only=True`` default).
2. ``mmpretrain::`` base configs without ``pkg_resources``.
3. ``ColorJitter(hue>0)`` under numpy 2.
4. ``persistent_workers=True`` with ``num_workers=0``.
5. Atomic checkpoint and ``last_checkpoint`` writing.

Every patch is a small function that is safe to call repeatedly; the
objects it replaces are kept and returned by :func:`get_original`.
This module must not import ``mmfer.datasets`` or ``mmfer.models``: it is
imported by ``mmfer/__init__.py`` before them.
"""
import builtins
import importlib
import importlib.metadata as importlib_metadata
import importlib.util
import logging
import os
import os.path as osp
import pickle
import sys
from typing import Any, Callable, Dict, Optional, Union

import cv2
import mmengine
import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader, Runner
from PIL import Image

from .atomic_io import atomic_open, atomic_write_bytes, atomic_write_text

#: Set to ``1`` to forbid full unpickling of local checkpoints.
WEIGHTS_ONLY_ENV = 'MMFER_WEIGHTS_ONLY'

# Marks the functions installed by this module, so that a second call of a
# patch sees its own work and does not wrap it again.
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
            ``'mmengine.runner.Runner.build_dataloader'``,
            ``'mmengine.runner.FlexibleRunner.build_dataloader'``,
            ``'mmengine.fileio.backends.LocalBackend.put'``,
            ``'mmengine.fileio.backends.LocalBackend.put_text'`` or
            ``'mmengine.hooks.checkpoint_hook.open'``.

    Returns:
        Any: The original object.

    Raises:
        KeyError: If no patch replaced ``name`` (yet).
    """
    return _ORIGINALS[name]


def _mark(func: Callable) -> Callable:
    setattr(func, _PATCH_FLAG, True)
    return func


def _is_patched(obj: Any) -> bool:
    return bool(getattr(obj, _PATCH_FLAG, False))


def _rebind_everywhere(original: Any, patched: Any) -> None:
    """Replace every module-level reference to ``original``.

    ``from mmengine.utils import is_installed`` copies the function into the
    importing module, so replacing it in its home module is not enough.

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


# ---------------------------------------------------------------------------
# 1. torch >= 2.6: checkpoint loading
# ---------------------------------------------------------------------------
def _weights_only_required() -> bool:
    value = os.environ.get(WEIGHTS_ONLY_ENV, '').strip().lower()
    return value in ('1', 'true', 'yes', 'on')


def _weights_only_reason(err: BaseException) -> str:
    """Pick the one informative line out of torch's long error message."""
    for line in str(err).splitlines():
        line = line.strip()
        if line.startswith('WeightsUnpickler error:'):
            line = line[len('WeightsUnpickler error:'):].strip()
            return line.split(' Please use', 1)[0]
    return str(err).strip().splitlines()[0] if str(err).strip() else repr(err)


def load_from_local(filename: str,
                    map_location: Optional[Union[str, Callable,
                                                 torch.device]] = None):
    """Load a local checkpoint, weights-only first, trusted pickle second.

    mmengine 0.10.7 ``runner/checkpoint.py:347`` (``load_from_local``) calls
    ``torch.load(filename, map_location)``, which on torch >= 2.6 means
    ``weights_only=True`` and rejects every mmengine training checkpoint:
    their ``message_hub`` holds ``HistoryBuffer`` objects and numpy arrays
    (``Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``).
    Allow-listing them is not an option because ``HistoryBuffer`` pickles
    ``builtins.getattr``, which defeats the weights-only safety anyway.

    This loader tries ``weights_only=True`` first, so plain state dicts
    (e.g. pretrained backbones) load through the safe path. If torch
    rejects the file as not weights-only, it logs a warning and unpickles
    it fully, as torch < 2.6 did. Only local files reach this loader; the
    ``http(s)://`` and other schemes keep mmengine's loaders. Set
    ``MMFER_WEIGHTS_ONLY=1`` to forbid the fallback.

    Args:
        filename (str): Local checkpoint path; ``~`` is expanded.
        map_location (str | Callable | torch.device, optional): Same as
            :func:`torch.load`. Defaults to None.

    Returns:
        dict or OrderedDict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` is not an existing file.
        pickle.UnpicklingError: If the file needs full unpickling and
            ``MMFER_WEIGHTS_ONLY`` is set.
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
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _weights_only_reason(err)
        if _weights_only_required():
            raise pickle.UnpicklingError(
                f'Cannot load checkpoint {filename} with '
                f'torch.load(weights_only=True): {reason} '
                f'{WEIGHTS_ONLY_ENV} is set, so mmfer does not fall back to '
                'full unpickling. Unset it (or set '
                f'{WEIGHTS_ONLY_ENV}=0) to load this file if you trust it, '
                'or load a file that holds only a state_dict.') from err
        print_log(
            f'Checkpoint {filename} is not loadable with '
            f'torch.load(weights_only=True) ({reason}); loading it with '
            'weights_only=False, which runs arbitrary pickled code. Only do '
            'this for files you trust; set '
            f'{WEIGHTS_ONLY_ENV}=1 to forbid it.',
            logger='current',
            level=logging.WARNING)
        return torch.load(
            filename, map_location=map_location, weights_only=False)


_mark(load_from_local)


def patch_checkpoint_loader() -> None:
    """Register :func:`load_from_local` for local paths in mmengine's
    ``CheckpointLoader`` (the ``''`` scheme)."""
    current = CheckpointLoader._schemes.get('')
    if _is_patched(current):
        return
    _ORIGINALS.setdefault('mmengine.runner.checkpoint.load_from_local',
                          current)
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)


# ---------------------------------------------------------------------------
# 2. setuptools >= 82: no pkg_resources
# ---------------------------------------------------------------------------
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


@_mark
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


@_mark
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


@_mark
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


def patch_package_utils() -> None:
    """Replace mmengine's ``pkg_resources``-based package helpers everywhere
    they are bound (``mmengine.utils``, ``mmengine.utils.package_utils``,
    ``mmengine.config.config``, ``mmengine.hub.hub``, ...)."""
    # Import the modules that bind the helpers, so that the sweep in
    # ``_rebind_everywhere`` sees them.
    for mod_name in ('mmengine.utils.package_utils', 'mmengine.config.config',
                     'mmengine.config.utils', 'mmengine.hub.hub'):
        importlib.import_module(mod_name)
    package_utils = sys.modules['mmengine.utils.package_utils']
    for name, patched in (('is_installed', is_installed),
                          ('get_installed_path', get_installed_path),
                          ('package2module', package2module)):
        current = getattr(package_utils, name)
        key = f'mmengine.utils.package_utils.{name}'
        if _is_patched(current):
            original = _ORIGINALS.get(key)
        else:
            original = _ORIGINALS.setdefault(key, current)
            setattr(package_utils, name, patched)
        if original is not None:
            # Also rebinds modules imported since the last call.
            _rebind_everywhere(original, patched)


# ---------------------------------------------------------------------------
# 3. numpy 2: mmcv.adjust_hue with a negative hue factor
# ---------------------------------------------------------------------------
@_mark
def adjust_hue(img: np.ndarray,
               hue_factor: float,
               backend: Optional[str] = None) -> np.ndarray:
    """Adjust the hue of an image, wrapping the hue shift modulo 256.

    Same as ``mmcv.adjust_hue`` except for the shift: mmcv 2.2.0
    ``image/photometric.py:546`` and ``:557`` add ``np.uint8(hue_factor *
    255)``, which numpy >= 2 rejects with ``OverflowError`` for a negative
    factor, so ``ColorJitter(hue=h)`` fails on about half of the samples.
    Here the hue channel is shifted with ``(h.astype(np.int16) + shift) %
    256``, the rotation numpy 1 performed implicitly.

    Args:
        img (ndarray): Image to be adjusted (BGR).
        hue_factor (float): Shift of the hue channel in ``[-0.5, 0.5]``;
            0 keeps the image, -0.5 and 0.5 give complementary colours.
        backend (str | None): ``'cv2'``, ``'pillow'`` or None for mmcv's
            image backend. Defaults to None.

    Returns:
        ndarray: Hue adjusted image.
    """
    if backend is None:
        # mmcv reads the ``imread_backend`` copied into photometric.py.
        photometric = sys.modules['mmcv.image.photometric']
        backend = getattr(photometric, 'imread_backend', 'cv2')
    if backend not in ['cv2', 'pillow']:
        raise ValueError(f'backend: {backend} is not supported.'
                         f"Supported backends are 'cv2', 'pillow'")

    if not (-0.5 <= hue_factor <= 0.5):
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and (img.ndim in {2, 3})):
        raise TypeError('img should be ndarray with dim=[2 or 3].')

    # ``int`` truncates towards zero like ``np.uint8(float)`` does for the
    # positive factors mmcv supported, so those give identical results.
    shift = int(hue_factor * 255)

    def _rotate(hue: np.ndarray) -> np.ndarray:
        return ((hue.astype(np.int16) + shift) % 256).astype(np.uint8)

    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        # Image.fromarray defaultly supports RGB, not BGR.
        pil_image = Image.fromarray(img[..., ::-1], mode='RGB')
        input_mode = pil_image.mode
        if input_mode in {'L', '1', 'I', 'F'}:
            return pil_image

        h, s, v = pil_image.convert('HSV').split()
        h = Image.fromarray(_rotate(np.array(h, dtype=np.uint8)), 'L')
        pil_image = Image.merge('HSV', (h, s, v)).convert(input_mode)
        return np.array(pil_image, dtype=img.dtype)[..., ::-1]

    dtype = img.dtype
    img = img.astype(np.uint8)
    hsv_img = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv_img)
    hsv_img = cv2.merge([_rotate(h), s, v])
    return cv2.cvtColor(hsv_img, cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def patch_adjust_hue() -> None:
    """Replace ``adjust_hue`` in ``mmcv``, ``mmcv.image`` and
    ``mmcv.image.photometric`` (mmpretrain's ``ColorJitter`` calls
    ``mmcv.adjust_hue``)."""
    importlib.import_module('mmcv.image.photometric')
    photometric = sys.modules['mmcv.image.photometric']
    key = 'mmcv.image.photometric.adjust_hue'
    if not _is_patched(photometric.adjust_hue):
        _ORIGINALS.setdefault(key, photometric.adjust_hue)
        photometric.adjust_hue = adjust_hue
    # Also covers ``mmcv.image`` and ``mmcv`` (``from .image import *``).
    _rebind_everywhere(_ORIGINALS[key], adjust_hue)


# ---------------------------------------------------------------------------
# 4. persistent_workers with num_workers=0
# ---------------------------------------------------------------------------
def _make_build_dataloader(original: Callable) -> Callable:
    """Wrap a ``build_dataloader`` staticmethod.

    Args:
        original (Callable): The unpatched function.

    Returns:
        Callable: The wrapper, to be installed as a staticmethod.
    """

    def build_dataloader(dataloader, *args, **kwargs):
        # mmpretrain 1.2.0 ``tools/train.py`` sets
        # ``persistent_workers=True`` on every dataloader, and torch's
        # DataLoader raises ``ValueError: persistent_workers option needs
        # num_workers > 0`` for configs with ``num_workers=0`` (the default).
        if (isinstance(dataloader, dict)
                and dataloader.get('persistent_workers', False)
                and dataloader.get('num_workers', 0) == 0):
            dataloader = type(dataloader)(dataloader)
            dataloader['persistent_workers'] = False
            print_log(
                '`persistent_workers=True` needs `num_workers > 0`; the '
                'dataloader has `num_workers=0`, so `persistent_workers` '
                'is set to False.',
                logger='current',
                level=logging.WARNING)
        return original(dataloader, *args, **kwargs)

    build_dataloader.__doc__ = original.__doc__
    build_dataloader.__name__ = original.__name__
    build_dataloader.__qualname__ = original.__qualname__
    return _mark(build_dataloader)


def patch_build_dataloader() -> None:
    """Make ``Runner.build_dataloader`` (and ``FlexibleRunner``'s) turn
    ``persistent_workers`` off when ``num_workers`` is 0."""
    from mmengine.runner import FlexibleRunner
    for cls in (Runner, FlexibleRunner):
        current = cls.__dict__['build_dataloader'].__func__
        if _is_patched(current):
            continue
        _ORIGINALS.setdefault(
            f'mmengine.runner.{cls.__name__}.build_dataloader', current)
        cls.build_dataloader = staticmethod(_make_build_dataloader(current))


# ---------------------------------------------------------------------------
# 5. Atomic checkpoint writing
# ---------------------------------------------------------------------------
@_mark
def _atomic_put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
    """``LocalBackend.put`` writing through a temporary file.

    mmengine 0.10.7 ``fileio/backends/local_backend.py:77`` opens the target
    with ``'wb'``, truncating the previous checkpoint before writing; a
    crash mid-write leaves a truncated ``epoch_N.pth``.

    Args:
        obj (bytes): Data to be written.
        filepath (str or Path): Path to write data.
    """
    mmengine.mkdir_or_exist(osp.dirname(filepath))
    atomic_write_bytes(filepath, obj)


@_mark
def _atomic_put_text(self,
                     obj: str,
                     filepath: Union[str, os.PathLike],
                     encoding: str = 'utf-8') -> None:
    """``LocalBackend.put_text`` writing through a temporary file.

    Same reason as :func:`_atomic_put` (``local_backend.py:102``).

    Args:
        obj (str): Data to be written.
        filepath (str or Path): Path to write data.
        encoding (str): Text encoding. Defaults to 'utf-8'.
    """
    mmengine.mkdir_or_exist(osp.dirname(filepath))
    atomic_write_text(filepath, obj, encoding=encoding)


_atomic_put.__name__ = _atomic_put.__qualname__ = 'put'
_atomic_put_text.__name__ = _atomic_put_text.__qualname__ = 'put_text'


def patch_atomic_checkpoint_writes() -> None:
    """Make ``LocalBackend.put``/``put_text`` and the ``last_checkpoint``
    file of ``CheckpointHook`` atomic."""
    for name, patched in (('put', _atomic_put), ('put_text',
                                                 _atomic_put_text)):
        current = LocalBackend.__dict__[name]
        if _is_patched(current):
            continue
        _ORIGINALS.setdefault(f'mmengine.fileio.backends.LocalBackend.{name}',
                              current)
        setattr(LocalBackend, name, patched)

    # mmengine 0.10.7 ``hooks/checkpoint_hook.py:460`` writes
    # ``last_checkpoint`` with ``open(save_file, 'w')``; that is the only
    # ``open`` in the module, and ``atomic_open`` hands any read mode to the
    # builtin ``open``, so shadowing the builtin there is safe.
    checkpoint_hook = importlib.import_module('mmengine.hooks.checkpoint_hook')
    current = checkpoint_hook.__dict__.get('open')
    if current is not atomic_open:
        _ORIGINALS.setdefault(
            'mmengine.hooks.checkpoint_hook.open',
            current if current is not None else builtins.open)
        checkpoint_hook.open = atomic_open


def apply_compat_patches() -> None:
    """Apply every mmfer compatibility patch; calling it again is a no-op.

    Applied by ``import mmfer`` and first thing in mmfer's ``tools/*.py``.
    """
    patch_checkpoint_loader()
    patch_package_utils()
    patch_adjust_hue()
    patch_build_dataloader()
    patch_atomic_checkpoint_writes()
