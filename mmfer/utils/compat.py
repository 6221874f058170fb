# Copyright (c) OpenMMLab. All rights reserved.
"""Gated run-time fixes for mmengine 0.10.7 / mmcv 2.2.0 on newer dependencies.

mmfer is tested on torch 2.14, numpy 2, setuptools >= 82 and mmengine
0.10.7, which was released before them. :func:`apply_compat_patches`
applies each fix below only where a probe of the installed packages shows
the defect, so that a process that imports mmfer and uses none of its
components behaves as before except for these fixes (defect -> probe):

1. Safe checkpoint loading: torch >= 2.6 loads with ``weights_only=True``,
   which rejects mmengine's training checkpoints -> :func:`torch.load`
   refuses an unknown class by default.
2. Plain ``HistoryBuffer`` state: ``HistoryBuffer.__getstate__`` pickles
   functions through ``builtins.getattr`` -> its state holds
   ``statistics_methods``.
3. Package helpers: mmengine imports ``pkg_resources``, which setuptools
   >= 82 removed -> ``pkg_resources`` cannot be found.
4. Hue shift: ``mmcv.adjust_hue`` overflows for negative factors under
   numpy 2 -> a negative factor raises ``OverflowError``.
5. Atomic checkpoint writes: mmengine truncates the old ``epoch_N.pth``
   and ``last_checkpoint`` before writing -> a write keeps the target's
   inode; ``CheckpointHook``'s module calls ``open`` for writing.

Every patch is safe to call repeatedly; the objects it replaces are kept
and returned by :func:`get_original`. This module must not import
``mmfer.datasets`` or ``mmfer.models``: it is imported by
``mmfer/__init__.py`` before them.
"""
import argparse
import importlib
import importlib.metadata as importlib_metadata
import importlib.util
import inspect
import io
import logging
import os
import os.path as osp
import pickle
import re
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import cv2
import mmengine
import numpy as np
import torch
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import CheckpointLoader
from PIL import Image

from .atomic_io import atomic_open, atomic_write_bytes, atomic_write_text

#: Set to ``1`` to let checkpoints that ``torch.load(weights_only=True)``
#: refuses be fully unpickled, which can run arbitrary code.
ALLOW_PICKLE_ENV = 'MMFER_ALLOW_PICKLE'

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
            ``'mmengine.logging.HistoryBuffer.__getstate__'``,
            ``'mmengine.fileio.backends.LocalBackend.put'`` or
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
# 1. torch >= 2.6: safe checkpoint loading
# ---------------------------------------------------------------------------
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


def pickle_allowed() -> bool:
    """Whether the user opted in to fully unpickling local checkpoints.

    Returns:
        bool: True if ``MMFER_ALLOW_PICKLE`` is ``1``/``true``/``yes``/``on``.
    """
    value = os.environ.get(ALLOW_PICKLE_ENV, '').strip().lower()
    return value in ('1', 'true', 'yes', 'on')


class _AllowPickleAction(argparse.Action):
    """Sets ``MMFER_ALLOW_PICKLE=1`` when its flag is given."""

    def __call__(self, parser, namespace, values, option_string=None):
        os.environ[ALLOW_PICKLE_ENV] = '1'
        setattr(namespace, self.dest, True)


def add_allow_pickle_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--allow-pickle`` opt-in of mmfer's tools to ``parser``.

    Args:
        parser (argparse.ArgumentParser): A tool's parser; parsing
            ``--allow-pickle`` sets ``MMFER_ALLOW_PICKLE=1``.
    """
    parser.add_argument(
        '--allow-pickle',
        action=_AllowPickleAction,
        nargs=0,
        default=False,
        help='fully unpickle checkpoints that torch.load(weights_only=True) '
        f'refuses (same as {ALLOW_PICKLE_ENV}=1); this runs any code they '
        'hold, so only use it for files you trust')


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


_mark(load_from_local)


def patch_checkpoint_loader() -> bool:
    """Register :func:`load_from_local` for local paths in mmengine's
    ``CheckpointLoader`` (the ``''`` scheme) where torch loads weights-only
    by default.

    Returns:
        bool: Whether the patch is in place.
    """
    current = CheckpointLoader._schemes.get('')
    if _is_patched(current):
        return True
    if not torch_load_defaults_to_weights_only():
        return False
    _ORIGINALS.setdefault('mmengine.runner.checkpoint.load_from_local',
                          current)
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    return True


# ---------------------------------------------------------------------------
# 2. HistoryBuffer pickles functions
# ---------------------------------------------------------------------------
def history_buffer_pickles_functions(
        getstate: Optional[Callable] = None) -> bool:
    """Probe whether ``HistoryBuffer``'s pickled state holds its
    statistics functions.

    Args:
        getstate (Callable, optional): The ``__getstate__`` to probe.
            Defaults to the one ``HistoryBuffer`` has now.

    Returns:
        bool: Whether the state has a ``statistics_methods`` entry.
    """
    getstate = getstate or HistoryBuffer.__getstate__
    return 'statistics_methods' in getstate(HistoryBuffer())


@_mark
def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """``HistoryBuffer.__getstate__`` returning plain data only.

    mmengine 0.10.7 ``logging/history_buffer.py:211`` adds the class-level
    ``_statistics_methods`` (``HistoryBuffer.min``, ``max``, ... and any
    registered method) to the instance and pickles them, through
    ``builtins.getattr``, into every checkpoint's ``message_hub``. They are
    registered on the class when mmengine (or the code that registers a
    custom method) is imported, so the state need not carry them.

    Returns:
        dict: A copy of the instance ``__dict__`` without
        ``statistics_methods``; the instance itself is not changed.
    """
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


@_mark
def _history_buffer_setstate(self: HistoryBuffer, state: dict) -> None:
    """``HistoryBuffer.__setstate__`` ignoring pickled statistics methods.

    mmengine's version merges the pickled ``statistics_methods`` into the
    class-level registry that every buffer shares, so a loaded file could
    replace ``mean``/``current`` for the whole process.

    Args:
        state (dict): The pickled instance state.
    """
    state = dict(state)
    state.pop('statistics_methods', None)
    self._set_default_statistics()
    self.__dict__.update(state)


_history_buffer_getstate.__name__ = '__getstate__'
_history_buffer_getstate.__qualname__ = 'HistoryBuffer.__getstate__'
_history_buffer_setstate.__name__ = '__setstate__'
_history_buffer_setstate.__qualname__ = 'HistoryBuffer.__setstate__'


def patch_history_buffer_state() -> bool:
    """Make ``HistoryBuffer`` pickle plain data where it pickles functions.

    Returns:
        bool: Whether the patch is in place.
    """
    if _is_patched(HistoryBuffer.__dict__.get('__getstate__')):
        return True
    if not history_buffer_pickles_functions():
        return False
    for name, patched in (('__getstate__', _history_buffer_getstate),
                          ('__setstate__', _history_buffer_setstate)):
        _ORIGINALS.setdefault(f'mmengine.logging.HistoryBuffer.{name}',
                              HistoryBuffer.__dict__[name])
        setattr(HistoryBuffer, name, patched)
    return True


# ---------------------------------------------------------------------------
# 3. setuptools >= 82: no pkg_resources
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
    ``mmengine.config.config``, ``mmengine.hub.hub``, ...) where
    ``pkg_resources`` is missing.

    Returns:
        bool: Whether the patch is in place.
    """
    # Import the modules that bind the helpers, so that the sweep in
    # ``_rebind_everywhere`` sees them.
    for mod_name in ('mmengine.utils.package_utils', 'mmengine.config.config',
                     'mmengine.config.utils', 'mmengine.hub.hub'):
        importlib.import_module(mod_name)
    package_utils = sys.modules['mmengine.utils.package_utils']
    applied = _is_patched(package_utils.is_installed)
    if not applied and not pkg_resources_missing():
        return False
    for name, patched in (('is_installed', is_installed),
                          ('get_installed_path', get_installed_path),
                          ('package2module', package2module)):
        key = f'mmengine.utils.package_utils.{name}'
        original = _ORIGINALS.setdefault(key, getattr(package_utils, name))
        setattr(package_utils, name, patched)
        # Also rebinds modules imported since the last call.
        _rebind_everywhere(original, patched)
    return True


# ---------------------------------------------------------------------------
# 4. numpy 2: mmcv.adjust_hue with a negative hue factor
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


def hue_shift_overflows(func: Callable) -> bool:
    """Probe whether an ``adjust_hue`` fails for a negative hue factor.

    Args:
        func (Callable): The ``adjust_hue`` to probe.

    Returns:
        bool: Whether it raises ``OverflowError`` (numpy >= 2 with mmcv
        <= 2.2.0).
    """
    try:
        func(np.zeros((1, 1, 3), dtype=np.uint8), -0.1, backend='cv2')
    except OverflowError:
        return True
    return False


def patch_adjust_hue() -> bool:
    """Replace ``adjust_hue`` in ``mmcv``, ``mmcv.image`` and
    ``mmcv.image.photometric`` (mmpretrain's ``ColorJitter`` calls
    ``mmcv.adjust_hue``) where it overflows.

    Returns:
        bool: Whether the patch is in place.
    """
    photometric = importlib.import_module('mmcv.image.photometric')
    current = photometric.adjust_hue
    if not _is_patched(current) and not hue_shift_overflows(current):
        return False
    key = 'mmcv.image.photometric.adjust_hue'
    original = _ORIGINALS.setdefault(key, current)
    photometric.adjust_hue = adjust_hue
    # Also covers ``mmcv.image`` and ``mmcv`` (``from .image import *``).
    _rebind_everywhere(original, adjust_hue)
    return True


# ---------------------------------------------------------------------------
# 5. Atomic checkpoint writing
# ---------------------------------------------------------------------------
def writes_in_place(put: Callable, data: Union[bytes, str]) -> bool:
    """Probe whether a ``LocalBackend`` write method overwrites in place.

    ``open(path, 'w')`` keeps the file (its inode) and truncates it first;
    a write through a temporary file and ``os.replace`` gives the path a
    new inode.

    Args:
        put (Callable): ``LocalBackend.put`` or ``put_text`` (unbound).
        data (bytes | str): Content of the type ``put`` takes.

    Returns:
        bool: Whether the write kept the inode of an existing file (or the
        probe could not run, e.g. without a writable temporary directory).
    """
    try:
        with tempfile.TemporaryDirectory() as tmp_dir:
            path = osp.join(tmp_dir, 'probe')
            with open(path, 'wb') as f:
                f.write(b'old')
            inode = os.stat(path).st_ino
            put(LocalBackend(), data, path)
            return os.stat(path).st_ino == inode
    except OSError:
        return True


def hook_opens_for_writing(module: Any) -> bool:
    """Probe whether a module writes files with the builtin ``open``.

    Args:
        module (module): e.g. ``mmengine.hooks.checkpoint_hook``.

    Returns:
        bool: Whether its source calls ``open(..., 'w...')`` (or the source
        is not available to tell).
    """
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return True
    return re.search(r'''\bopen\([^()]*,\s*['"][wx]''', source) is not None


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


def patch_atomic_checkpoint_writes() -> bool:
    """Make ``LocalBackend.put``/``put_text`` and the ``last_checkpoint``
    file of ``CheckpointHook`` atomic where they write in place.

    Returns:
        bool: Whether any of the three writers is patched.
    """
    applied = False
    for name, patched, probe_data in (('put', _atomic_put, b'new'),
                                      ('put_text', _atomic_put_text, 'new')):
        current = LocalBackend.__dict__[name]
        if not _is_patched(current):
            if not writes_in_place(current, probe_data):
                continue
            _ORIGINALS.setdefault(
                f'mmengine.fileio.backends.LocalBackend.{name}', current)
            setattr(LocalBackend, name, patched)
        applied = True

    # mmengine 0.10.7 ``hooks/checkpoint_hook.py:460`` writes
    # ``last_checkpoint`` with ``open(save_file, 'w')``; that is the only
    # ``open`` in the module, and ``atomic_open`` hands any read mode to the
    # builtin ``open``, so shadowing the builtin there is safe.
    checkpoint_hook = importlib.import_module('mmengine.hooks.checkpoint_hook')
    current = checkpoint_hook.__dict__.get('open')
    if current is atomic_open:
        return True
    if not hook_opens_for_writing(checkpoint_hook):
        return applied
    _ORIGINALS.setdefault('mmengine.hooks.checkpoint_hook.open',
                          current if current is not None else open)
    checkpoint_hook.open = atomic_open
    return True


def apply_compat_patches() -> List[str]:
    """Apply every mmfer fix whose defect the installed packages have;
    calling it again is a no-op.

    Applied by ``import mmfer`` and so before mmfer's ``tools/*.py`` read a
    config.

    Returns:
        list[str]: Names of the fixes in place, in the order of the table
        in this module's docstring.
    """
    patches = (('safe checkpoint loading', patch_checkpoint_loader),
               ('plain HistoryBuffer state', patch_history_buffer_state),
               ('package helpers', patch_package_utils),
               ('hue shift', patch_adjust_hue),
               ('atomic checkpoint writes', patch_atomic_checkpoint_writes))
    return [name for name, patch in patches if patch()]
