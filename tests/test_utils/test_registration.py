# Copyright (c) OpenMMLab. All rights reserved.
"""``import mmfer`` registers nothing itself, yet every registry lookup
finds mmfer's components: mmfer's packages are in the registries'
``locations``."""
import json

from tool_runs import run

# Prints {registry: [mmfer components it holds]} for mmpretrain's and
# mmfer's registries, after the lookups a Runner makes (``get`` imports a
# registry's locations) when LAZY, else after importing every mmfer module.
_REGISTERED = """
import importlib, json, pkgutil, sys
import mmfer
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry
from mmfer import registry as mmfer_registry

if sys.argv[1] == 'lazy':
    assert 'mmfer.models' not in sys.modules
else:
    for info in pkgutil.walk_packages(mmfer.__path__, 'mmfer.'):
        importlib.import_module(info.name)
registries = {
    f'{module.__name__}.{name}': registry
    for module in (mmpretrain_registry, mmfer_registry)
    for name, registry in vars(module).items()
    if isinstance(registry, Registry)
}
for registry in registries.values():
    registry.get('no such component')  # imports the locations
print(json.dumps({
    name: sorted(key for key, cls in registry.module_dict.items()
                 if cls.__module__.startswith('mmfer.'))
    for name, registry in registries.items()
}))
"""

# Every ``type`` of every config resolves in a registry after only
# ``import mmfer``.
_CONFIG_TYPES = """
import glob, sys
import mmfer
from mmengine import registry as mmengine_registry
from mmengine.config import Config
from mmpretrain import registry as mmpretrain_registry
from mmfer import registry as mmfer_registry

registries = [
    registry
    for module in (mmengine_registry, mmpretrain_registry, mmfer_registry)
    for registry in vars(module).values()
    if isinstance(registry, mmengine_registry.Registry)
]


def types(node):
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield node['type']
        for value in node.values():
            yield from types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from types(value)


missing, count = set(), 0
for path in sorted(glob.glob('configs/**/*.py', recursive=True)):
    for name in set(types(Config.fromfile(path).to_dict())):
        count += 1
        if not any(registry.get(name) for registry in registries):
            missing.add((path, name))
assert count > 100 and not missing, (count, sorted(missing))
"""


def _registered(mode: str) -> dict:
    return json.loads(
        run(['-c', _REGISTERED, mode]).stdout.strip().splitlines()[-1])


def test_lookups_find_what_importing_everything_registers():
    lazy = _registered('lazy')
    assert lazy == _registered('eager')
    # Spot checks, so that an empty result cannot pass.
    assert 'EACHead' in lazy['mmpretrain.registry.MODELS']
    assert 'RAFDBDataset' in lazy['mmpretrain.registry.DATASETS']
    assert 'ReSupHook' in lazy['mmpretrain.registry.HOOKS']
    assert 'DeviceRandomFlip' in lazy['mmfer.registry.DEVICE_AUGMENTS']
    assert lazy['mmpretrain.registry.BATCH_AUGMENTS'] == []
    assert 'mtcnn' in lazy['mmfer.registry.FACE_DETECTORS']


def test_every_config_type_is_found():
    run(['-c', _CONFIG_TYPES])
