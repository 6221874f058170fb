# Copyright (c) OpenMMLab. All rights reserved.
"""Fix 5, atomic checkpoint writes: mmengine truncates the old
``epoch_N.pth`` and ``last_checkpoint`` before writing, so a crash
mid-write leaves a truncated file.

Probe: ``LocalBackend.put``/``put_text`` write in place (they open their
target for writing, which keeps its inode); ``CheckpointHook``'s module
calls ``open(..., 'w')``. Both are read from the functions' bytecode, so
probing touches no file. Fix: they write through a temporary file and
``os.replace`` (:mod:`mmfer.utils.atomic_io`).
"""
import dis
import importlib
import os
import os.path as osp
import re
from types import CodeType, ModuleType
from typing import Any, Callable, Iterator, Union

from mmengine.fileio.backends import LocalBackend
from mmengine.utils import mkdir_or_exist

from ..atomic_io import atomic_open, atomic_write_bytes, atomic_write_text
from .patching import is_patched, mark, save_original

# A mode ``open`` truncates, creates or appends with.
_WRITE_MODE = re.compile(r'[rbt+]*[wxa][rbt+]*')


def _nested_codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _nested_codes(const)


def _stack_effect(instruction: dis.Instruction) -> int:
    if instruction.opcode < dis.HAVE_ARGUMENT:
        return dis.stack_effect(instruction.opcode)
    return dis.stack_effect(instruction.opcode, instruction.arg)


def calls_open_for_writing(code: CodeType) -> bool:
    """Whether ``code``, or a function defined in it, calls the builtin
    ``open`` with a constant write mode (``'w'``, ``'wb'``, ``'x'``, ...).

    Follows the stack depth from loading ``open`` to the call that pops it:
    a constant is an argument of that call if it stays on the stack until
    the call pops all arguments at once (a nested call pops it earlier).

    Args:
        code (CodeType): A function's ``__code__``.

    Returns:
        bool: Whether such a call is found.
    """
    for each in _nested_codes(code):
        depth, open_depth, modes = 0, None, []
        for instruction in dis.get_instructions(each):
            new_depth = depth + _stack_effect(instruction)
            if open_depth is None:
                if (instruction.opname in ('LOAD_GLOBAL', 'LOAD_NAME')
                        and instruction.argval == 'open'):
                    open_depth, modes = new_depth, []
            elif (instruction.opname == 'LOAD_CONST'
                  and isinstance(instruction.argval, str)
                  and _WRITE_MODE.fullmatch(instruction.argval)):
                modes.append(new_depth)
            elif any(new_depth < mode for mode in modes):
                if new_depth <= open_depth:
                    return True  # popped by the call of ``open``
                modes = [mode for mode in modes if mode <= new_depth]
            if open_depth is not None and new_depth < open_depth:
                open_depth = None  # the call of ``open`` has returned
            depth = new_depth
    return False


def writes_in_place(put: Callable) -> bool:
    """Probe whether a ``LocalBackend`` write method overwrites in place.

    ``open(path, 'w')`` keeps the file (its inode) and truncates it first;
    a write through a temporary file and ``os.replace`` gives the path a
    new inode. mmengine's methods open their target with ``'wb'``/``'w'``,
    mmfer's atomic ones call :mod:`mmfer.utils.atomic_io` instead.

    Args:
        put (Callable): ``LocalBackend.put`` or ``put_text`` (unbound).

    Returns:
        bool: Whether it calls ``open`` with a write mode (or has no Python
        code to tell).
    """
    code = getattr(put, '__code__', None)
    return code is None or calls_open_for_writing(code)


def _module_codes(module: ModuleType) -> Iterator[CodeType]:
    """The code of the functions and methods defined in ``module``."""
    for obj in vars(module).values():
        if getattr(obj, '__module__', None) != module.__name__:
            continue
        members = vars(obj).values() if isinstance(obj, type) else [obj]
        for member in members:
            func = getattr(member, '__func__', member)  # static/classmethod
            code = getattr(func, '__code__', None)
            if code is not None:
                yield code


def hook_opens_for_writing(module: Any) -> bool:
    """Probe whether a module writes files with the builtin ``open``.

    Args:
        module (module): e.g. ``mmengine.hooks.checkpoint_hook``.

    Returns:
        bool: Whether one of its functions or methods calls
        ``open(..., 'w...')``.
    """
    return any(calls_open_for_writing(code) for code in _module_codes(module))


@mark
def _atomic_put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
    """``LocalBackend.put`` writing through a temporary file.

    mmengine 0.10.7 ``fileio/backends/local_backend.py:77`` opens the target
    with ``'wb'``, truncating the previous checkpoint before writing; a
    crash mid-write leaves a truncated ``epoch_N.pth``.

    Args:
        obj (bytes): Data to be written.
        filepath (str or Path): Path to write data.
    """
    mkdir_or_exist(osp.dirname(filepath))
    atomic_write_bytes(filepath, obj)


@mark
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
    mkdir_or_exist(osp.dirname(filepath))
    atomic_write_text(filepath, obj, encoding=encoding)


_atomic_put.__name__ = _atomic_put.__qualname__ = 'put'
_atomic_put_text.__name__ = _atomic_put_text.__qualname__ = 'put_text'


def patch_local_backend() -> bool:
    """Make ``LocalBackend.put``/``put_text`` atomic where they write in
    place.

    Returns:
        bool: Whether either of them is patched.
    """
    applied = False
    for name, patched in (('put', _atomic_put),
                          ('put_text', _atomic_put_text)):
        current = LocalBackend.__dict__[name]
        if not is_patched(current):
            if not writes_in_place(current):
                continue
            save_original(f'mmengine.fileio.backends.LocalBackend.{name}',
                          current)
            setattr(LocalBackend, name, patched)
        applied = True
    return applied


def patch_checkpoint_hook() -> bool:
    """Make ``CheckpointHook`` write ``last_checkpoint`` atomically where
    its module opens files for writing.

    Returns:
        bool: Whether the patch is in place.
    """
    # mmengine 0.10.7 ``hooks/checkpoint_hook.py:460`` writes
    # ``last_checkpoint`` with ``open(save_file, 'w')``; that is the only
    # ``open`` in the module, and ``atomic_open`` hands any read mode to the
    # builtin ``open``, so shadowing the builtin there is safe.
    checkpoint_hook = importlib.import_module('mmengine.hooks.checkpoint_hook')
    current = checkpoint_hook.__dict__.get('open')
    if current is atomic_open:
        return True
    if not hook_opens_for_writing(checkpoint_hook):
        return False
    save_original('mmengine.hooks.checkpoint_hook.open',
                  current if current is not None else open)
    checkpoint_hook.open = atomic_open
    return True


def patch_atomic_checkpoint_writes() -> bool:
    """Make ``LocalBackend.put``/``put_text`` and the ``last_checkpoint``
    file of ``CheckpointHook`` atomic where they write in place.

    Returns:
        bool: Whether any of the three writers is patched.
    """
    backend = patch_local_backend()
    return patch_checkpoint_hook() or backend
