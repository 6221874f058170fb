# Copyright (c) OpenMMLab. All rights reserved.
import importlib.machinery
import inspect
import json
import sys

import pytest

from mmfer.utils.import_hooks import when_imported


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package ``hooked_pkg`` whose ``__init__`` imports a submodule."""
    name = f'hooked_pkg_{tmp_path.name}'
    root = tmp_path / name
    root.mkdir()
    (root / '__init__.py').write_text('from .child import VALUE\n')
    (root / 'child.py').write_text('VALUE = 7\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def test_runs_at_once_for_an_imported_module():
    seen = []
    when_imported('json', seen.append)
    assert seen == [json]


def test_runs_once_after_the_package_is_imported(package):
    seen = []
    when_imported(package, lambda module: seen.append(module.VALUE))
    assert seen == []
    module = importlib.import_module(package)
    assert seen == [7]  # after the whole __init__ ran
    # The real loader is back, for inspect, linecache and reloads.
    assert isinstance(module.__loader__,
                      importlib.machinery.SourceFileLoader)
    assert module.__spec__.loader is module.__loader__
    assert 'from .child import VALUE' in inspect.getsource(module)
    importlib.reload(module)
    assert seen == [7]


def test_callback_error_reaches_the_import(package):

    def fail(module):
        raise RuntimeError('patch failed')

    when_imported(package, fail)
    with pytest.raises(RuntimeError, match='patch failed'):
        importlib.import_module(package)
