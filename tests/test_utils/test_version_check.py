# Copyright (c) OpenMMLab. All rights reserved.
import pytest

from mmfer.utils import version_check


def test_installed_stack_passes():
    version_check.check_stack()


def test_wrong_version_names_the_fix(monkeypatch):
    real = version_check._installed_version

    def fake(dists):
        return '0.9.0' if dists == ('mmengine', ) else real(dists)

    monkeypatch.setattr(version_check, '_installed_version', fake)
    with pytest.raises(ImportError) as err:
        version_check.check_stack()
    msg = str(err.value)
    assert 'mmengine 0.9.0 is installed' in msg
    assert 'pip install "mmengine==0.10.7"' in msg


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setattr(version_check, '_installed_version', lambda d: None)
    with pytest.raises(ImportError, match='mmpretrain is not installed'):
        version_check.check_stack()
