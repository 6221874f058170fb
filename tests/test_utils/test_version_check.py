# Copyright (c) OpenMMLab. All rights reserved.
import pytest

from mmfer.utils import version_check


def _pretend_installed(monkeypatch, dists: tuple, version: str) -> None:
    """Make ``version_check`` see ``version`` for ``dists`` only."""
    real = version_check._installed_version

    def fake(queried):
        return version if queried == dists else real(queried)

    monkeypatch.setattr(version_check, '_installed_version', fake)


def test_installed_stack_passes():
    version_check.check_stack()


def test_wrong_version_names_the_fix(monkeypatch):
    _pretend_installed(monkeypatch, ('mmengine', ), '0.9.0')
    with pytest.raises(ImportError) as err:
        version_check.check_stack()
    msg = str(err.value)
    assert 'mmengine 0.9.0 is installed' in msg
    assert 'pip install "mmengine==0.10.7"' in msg


def test_torch_without_safe_loading_is_refused(monkeypatch):
    # torch < 2.6 unpickles checkpoints fully unless told otherwise.
    _pretend_installed(monkeypatch, ('torch', ), '2.5.1')
    with pytest.raises(ImportError,
                       match=r'torch 2\.5\.1 is installed but mmfer needs '
                       r'2\.6\.0 <= torch < 3\.0\.0'):
        version_check.check_stack()


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setattr(version_check, '_installed_version', lambda d: None)
    with pytest.raises(ImportError, match='mmpretrain is not installed'):
        version_check.check_stack()
