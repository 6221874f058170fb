# Copyright (c) OpenMMLab. All rights reserved.
"""Run a function when a module has been imported.

``import mmfer`` must not import torch, mmengine or mmpretrain itself (a
tool's ``--help`` would take seconds), yet the compatibility fixes and the
registration into mmpretrain's registries have to be in place before those
packages are used. :func:`when_imported` defers such work to the moment the
package it concerns has finished importing, or runs it at once if it has.
"""
import importlib.abc
import sys
import threading
from types import ModuleType
from typing import Callable, Dict, List, Optional

Callback = Callable[[ModuleType], None]

# module name -> callbacks still waiting for it to be imported
_PENDING: Dict[str, List[Callback]] = {}
_LOCK = threading.RLock()


def _imported(name: str) -> Optional[ModuleType]:
    """The module ``name`` if it is imported and no longer executing."""
    module = sys.modules.get(name)
    spec = getattr(module, '__spec__', None)
    if module is None or getattr(spec, '_initializing', False):
        return None
    return module


class _CallbackLoader(importlib.abc.Loader):
    """Wraps a module's loader to run its callbacks after executing it.

    Args:
        loader (importlib.abc.Loader): The loader found for the module.
    """

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        # Later readers (inspect, linecache, pickle) see the real loader.
        module.__loader__ = module.__spec__.loader = self.loader
        with _LOCK:
            callbacks = _PENDING.pop(module.__name__, [])
        for callback in callbacks:
            callback(module)

    def __getattr__(self, name: str):
        # get_source, get_filename, is_package, ... of the real loader.
        return getattr(self.loader, name)


class _CallbackFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: gives the modules that callbacks wait for
    a loader that runs them; every other import is left to the others."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in _PENDING:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, 'find_spec', None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if getattr(spec.loader, 'exec_module', None) is not None:
            spec.loader = _CallbackLoader(spec.loader)
        return spec


_FINDER = _CallbackFinder()


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once module ``name`` has been imported.

    Runs it now if the module is imported already; otherwise right after
    the module's code has run (for a package: its ``__init__``, and so all
    it imports), before the ``import`` statement that loads it returns.

    Args:
        name (str): Full module name, e.g. ``'mmengine.runner'``.
        callback (Callable[[module], None]): Called with the module; an
            error it raises propagates to that ``import`` statement.
    """
    module = _imported(name)
    if module is not None:
        callback(module)
        return
    with _LOCK:
        _PENDING.setdefault(name, []).append(callback)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)
