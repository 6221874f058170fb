# Copyright (c) OpenMMLab. All rights reserved.
"""Fix 2, plain ``HistoryBuffer`` state: mmengine pickles its statistics
functions through ``builtins.getattr`` into every checkpoint's message hub.

Probe: ``HistoryBuffer().__getstate__()`` holds ``statistics_methods``.
Fix: ``HistoryBuffer`` pickles, and loads, plain data only.
"""
from typing import Callable, Optional

from mmengine.logging import HistoryBuffer

from .patching import is_patched, mark, save_original


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


@mark
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


@mark
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
    if is_patched(HistoryBuffer.__dict__.get('__getstate__')):
        return True
    if not history_buffer_pickles_functions():
        return False
    for name, patched in (('__getstate__', _history_buffer_getstate),
                          ('__setstate__', _history_buffer_setstate)):
        save_original(f'mmengine.logging.HistoryBuffer.{name}',
                      HistoryBuffer.__dict__[name])
        setattr(HistoryBuffer, name, patched)
    return True
