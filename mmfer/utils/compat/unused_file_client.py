# Copyright (c) OpenMMLab. All rights reserved.
"""Fix 7, quiet checkpoints: mmengine's ``save_checkpoint``
(``runner/checkpoint.py``) and ``CheckpointHook.before_train`` build a
``FileClient`` even when no ``file_client_args`` are given, which they then
never use, and so log ``"FileClient" will be deprecated`` and
``"HardDiskBackend" is the alias of "LocalBackend"`` on every run.

Probe: ``save_checkpoint`` (``before_train``) calls
``FileClient.infer_client``. Fix: their modules see a ``FileClient`` whose
``infer_client`` returns None when no arguments are given (they then write
through ``get_file_backend``, as before) and builds the real client
otherwise.
"""
import importlib
from typing import Any, Optional

from .patching import is_patched, mark, save_original

# module -> the function that builds the unused client
USERS = {
    'mmengine.runner.checkpoint': lambda m: m.save_checkpoint,
    'mmengine.hooks.checkpoint_hook': lambda m: m.CheckpointHook.before_train,
}


def builds_unused_client(func: Any) -> bool:
    """Whether ``func`` calls ``FileClient.infer_client``.

    Args:
        func (Callable): ``save_checkpoint`` or ``CheckpointHook.before_train``.

    Returns:
        bool: True where every run logs the two deprecation warnings.
    """
    return 'infer_client' in func.__code__.co_names


def lazy_file_client(file_client: type) -> type:
    """A stand-in for ``FileClient`` that builds no client without args.

    Args:
        file_client (type): mmengine's ``FileClient``.

    Returns:
        type: A class with ``infer_client``, as the hook calls it.
    """

    class LazyFileClient:

        @staticmethod
        def infer_client(file_client_args: Optional[dict] = None,
                         uri: Optional[Any] = None) -> Any:
            if file_client_args is None:
                return None  # unused: the hook writes with its backend
            return file_client.infer_client(file_client_args, uri)

    return mark(LazyFileClient)


def patch_unused_file_clients() -> bool:
    """Give ``save_checkpoint``'s and ``CheckpointHook``'s modules the
    stand-in, where they build an unused client.

    Returns:
        bool: Whether the patch is in place (in either module).
    """
    patched = []
    for name, user in USERS.items():
        module = importlib.import_module(name)
        current = module.FileClient
        if not is_patched(current) and builds_unused_client(user(module)):
            current = lazy_file_client(
                save_original(f'{name}.FileClient', current))
            module.FileClient = current
        patched.append(is_patched(current))
    return any(patched)
