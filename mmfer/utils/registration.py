# Copyright (c) OpenMMLab. All rights reserved.
"""Register mmfer's components into mmpretrain's registries on demand.

mmfer's datasets, transforms, samplers, models, hooks, optimiser wrappers
and metrics register into mmpretrain's registries. Instead of importing
them all (and so torch, torchvision and mmpretrain's models) on
``import mmfer``, mmfer's packages are added to those registries'
``locations``: mmengine imports a registry's locations the first time it
looks a name up in it, so a config's ``type='EACHead'`` is found, by
mmengine's ``Runner`` and mmpretrain's tools alike, whenever mmfer has been
imported (e.g. through ``custom_imports=dict(imports=['mmfer'])``).
"""
import importlib
from types import ModuleType
from typing import Dict, Tuple

from .import_hooks import when_imported

#: mmpretrain registry -> the mmfer packages whose modules register into it.
LOCATIONS: Dict[str, Tuple[str, ...]] = {
    'DATASETS': ('mmfer.datasets', ),
    'DATA_SAMPLERS': ('mmfer.datasets', ),
    'TRANSFORMS': ('mmfer.datasets', ),
    'MODELS': ('mmfer.models', ),
    'HOOKS': ('mmfer.engine', ),
    'OPTIM_WRAPPERS': ('mmfer.engine', ),
    'METRICS': ('mmfer.evaluation', ),
}


def _add_locations(registry_module: ModuleType) -> None:
    """Add mmfer's packages to the locations of ``mmpretrain.registry``'s
    registries.

    Args:
        registry_module (module): ``mmpretrain.registry``.
    """
    for name, locations in LOCATIONS.items():
        registry = getattr(registry_module, name)
        for location in locations:
            # mmengine has no public API for either: ``_imported`` is set
            # once the locations have been imported, after which added ones
            # would never be, so they are imported now.
            if registry._imported:
                importlib.import_module(location)
            elif location not in registry._locations:
                registry._locations.append(location)


def register_on_import() -> None:
    """Make mmpretrain's registries find mmfer's components, once
    ``mmpretrain.registry`` is imported (at once if it is)."""
    when_imported('mmpretrain.registry', _add_locations)
