# Copyright (c) OpenMMLab. All rights reserved.
import gc
import io
import os
import stat
import sys

import pytest

from mmfer.utils.atomic_io import (atomic_open, atomic_path,
                                   atomic_write_bytes, atomic_write_text)


def _listing(path) -> list:
    return sorted(os.listdir(path))


def test_write_bytes_creates_and_replaces(tmp_path):
    target = tmp_path / 'epoch_1.pth'
    atomic_write_bytes(target, b'first')
    assert target.read_bytes() == b'first'
    atomic_write_bytes(str(target), b'second, longer content')
    assert target.read_bytes() == b'second, longer content'
    assert _listing(tmp_path) == ['epoch_1.pth']


def test_write_text_encoding(tmp_path):
    target = tmp_path / 'last_checkpoint'
    atomic_write_text(target, 'wörk_dirs/epoch_1.pth')
    assert target.read_bytes() == 'wörk_dirs/epoch_1.pth'.encode('utf-8')
    atomic_write_text(target, 'é', encoding='latin-1')
    assert target.read_bytes() == b'\xe9'


def test_exception_keeps_old_content_and_removes_temp(tmp_path):
    target = tmp_path / 'last_checkpoint'
    target.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_open(target, 'w') as f:
            f.write('new, half written')
            # The target is untouched while the writer is open.
            assert target.read_text() == 'old'
            raise RuntimeError('killed')
    assert target.read_text() == 'old'
    assert _listing(tmp_path) == ['last_checkpoint']


def test_close_commits_and_name_is_target(tmp_path):
    target = tmp_path / 'a.bin'
    f = atomic_open(target, 'wb')
    assert f.name == str(target)
    f.write(b'abc')
    assert not target.exists()
    f.close()
    assert f.closed
    f.close()  # closing twice is harmless
    assert target.read_bytes() == b'abc'


def test_unclosed_writer_never_commits(tmp_path):
    target = tmp_path / 'a.txt'
    target.write_text('old')
    f = atomic_open(target, 'w')
    f.write('incomplete')
    del f
    gc.collect()
    assert target.read_text() == 'old'
    assert _listing(tmp_path) == ['a.txt']


def test_discard(tmp_path):
    target = tmp_path / 'a.txt'
    f = atomic_open(target, 'w')
    f.write('x')
    f.discard()
    assert _listing(tmp_path) == []


def test_read_and_append_modes_use_builtin_open(tmp_path):
    target = tmp_path / 'log.txt'
    target.write_text('a')
    with atomic_open(target) as f:
        assert isinstance(f, io.TextIOWrapper)
        assert f.read() == 'a'
    with atomic_open(target, 'a') as f:
        assert isinstance(f, io.TextIOWrapper)
        f.write('b')
    with atomic_open(target, 'rb') as f:
        assert f.read() == b'ab'


def test_exclusive_mode(tmp_path):
    target = tmp_path / 'new.txt'
    with atomic_open(target, 'x') as f:
        f.write('1')
    assert target.read_text() == '1'
    with pytest.raises(FileExistsError):
        atomic_open(target, 'x')
    assert _listing(tmp_path) == ['new.txt']


def test_positional_open_arguments(tmp_path):
    target = tmp_path / 'a.txt'
    with atomic_open(target, 'w', -1, 'utf-16') as f:
        f.write('hi')
    assert target.read_text(encoding='utf-16') == 'hi'


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX permissions')
def test_keeps_permissions_of_replaced_file(tmp_path):
    target = tmp_path / 'a.txt'
    target.write_text('old')
    os.chmod(target, 0o640)
    atomic_write_text(target, 'new')
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640

    # A new file follows the umask like ``open`` (not mkstemp's 0600).
    umask = os.umask(0)
    os.umask(umask)
    fresh = tmp_path / 'fresh.txt'
    atomic_write_text(fresh, 'x')
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o666 & ~umask


@pytest.mark.skipif(sys.platform == 'win32', reason='symlinks')
def test_writes_through_symlink(tmp_path):
    real = tmp_path / 'real.txt'
    real.write_text('old')
    link = tmp_path / 'link.txt'
    link.symlink_to(real)
    atomic_write_text(link, 'new')
    assert link.is_symlink()
    assert real.read_text() == 'new'


def test_atomic_path_follows_umask_and_replaces_on_success(tmp_path):
    target = tmp_path / 'model.onnx'
    with atomic_path(target) as tmp:
        assert not target.exists()
        with open(tmp, 'wb') as f:
            f.write(b'new')
    assert target.read_bytes() == b'new'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ['model.onnx']


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / 'model.onnx'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half')
            raise RuntimeError('export failed')
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['model.onnx']
