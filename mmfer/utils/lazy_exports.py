# Copyright (c) OpenMMLab. All rights reserved.
"""Package names that import their module on first use (PEP 562)."""
import importlib
from typing import Any, Callable, Dict


def lazy_exports(package: str, modules: Dict[str, str]) -> Callable[[str],
                                                                      Any]:
    """Make a package's ``__getattr__`` for names defined in its modules.

    ``from package import name`` and ``package.name`` then import only the
    module that defines ``name``.

    Args:
        package (str): The package's ``__name__``.
        modules (dict[str, str]): Exported name -> the submodule (relative
            to ``package``) that defines it.

    Returns:
        Callable: The ``__getattr__`` to assign in the package.
    """

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(
                f'module {package!r} has no attribute {name!r}')
        module = importlib.import_module(f'{package}.{modules[name]}')
        return getattr(module, name)

    return __getattr__
