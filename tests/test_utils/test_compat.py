# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of :mod:`mmfer.utils.compat`.

Every patch is tested twice: the patched behaviour works, and the saved
original (``compat.get_original``) or the original mmengine code path fails
on the same input, so that no test can pass without its patch.
"""
import builtins
import errno
import importlib
import importlib.util
import logging
import os
import os.path as osp
import pickle
import sys
import uuid
from typing import Any, List

import cv2
import mmcv
import mmengine.runner.checkpoint  # noqa: F401
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader, Runner
from mmengine.runner.checkpoint import save_checkpoint
from mmengine.visualization import Visualizer
from torch.utils.data import Dataset

from mmfer.utils import compat

MM_CHECKPOINT = sys.modules['mmengine.runner.checkpoint']
CHECKPOINT_HOOK = importlib.import_module('mmengine.hooks.checkpoint_hook')
_MANAGERS = (MMLogger, MessageHub, Visualizer, DefaultScope)
_BUILTIN_OPEN = builtins.open


# ---------------------------------------------------------------------------
# Toy components and fixtures
# ---------------------------------------------------------------------------
class ToyDataset(Dataset):
    """Eight samples ``x`` in R^2 with target ``x0 + x1``."""

    def __init__(self, num_samples: int = 8) -> None:
        generator = torch.Generator().manual_seed(0)
        self.inputs = torch.randn(num_samples, 2, generator=generator)
        self.targets = self.inputs.sum(dim=1, keepdim=True)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict:
        return dict(
            inputs=self.inputs[index], data_samples=self.targets[index])


class ToyModel(BaseModel):
    """A linear regressor following the ``BaseModel`` modes."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        outputs = self.linear(torch.stack(inputs))
        if mode == 'tensor':
            return outputs
        targets = torch.stack(data_samples)
        if mode == 'loss':
            return dict(loss=F.mse_loss(outputs, targets))
        return [dict(pred=p, gt=t) for p, t in zip(outputs, targets)]


class ToyMetric(BaseMetric):
    """Mean absolute error of :class:`ToyModel` predictions."""

    default_prefix = 'toy'

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            self.results.append(float((sample['pred'] - sample['gt']).abs()))

    def compute_metrics(self, results: list) -> dict:
        return dict(mae=sum(results) / len(results))


def _dataloader() -> dict:
    return dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=4,
        num_workers=0)


def _build_runner(work_dir, **kwargs) -> Runner:
    """A CPU Runner in mmpretrain's scope: 1 epoch of 2 iterations."""
    cfg = dict(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=_dataloader(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        log_level='WARNING',
        experiment_name=f'test_compat_{uuid.uuid4().hex}')
    cfg.update(kwargs)
    return Runner(**cfg)


def _test_kwargs() -> dict:
    return dict(
        test_dataloader=_dataloader(),
        test_cfg=dict(),
        test_evaluator=Evaluator(ToyMetric()))


def _release_new_instances(before: dict) -> None:
    """Forget the logger/visualizer/... instances created since ``before``,
    closing the log files of Runners built by a test."""
    for manager in _MANAGERS:
        for name in list(manager._instance_dict):
            if name in before[manager]:
                continue
            instance = manager._instance_dict.pop(name)
            if isinstance(instance, logging.Logger):
                for handler in list(instance.handlers):
                    handler.close()
                    instance.removeHandler(handler)


def _snapshot() -> dict:
    return {m: set(m._instance_dict) for m in _MANAGERS}


@pytest.fixture(autouse=True)
def _isolate_mmengine_instances():
    """Clear ``MMLogger._instance_dict`` etc. of what a test's Runners
    created."""
    compat.apply_compat_patches()
    before = _snapshot()
    yield
    _release_new_instances(before)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train the toy Runner for one epoch; return its ``work_dir``, the
    ``epoch_1.pth`` path and the trained weights."""
    before = _snapshot()
    compat.apply_compat_patches()
    work_dir = tmp_path_factory.mktemp('trained')
    runner = _build_runner(work_dir)
    runner.train()
    state_dict = {k: v.clone() for k, v in runner.model.state_dict().items()}
    _release_new_instances(before)
    return dict(
        work_dir=str(work_dir),
        ckpt=osp.join(str(work_dir), 'epoch_1.pth'),
        state_dict=state_dict)


@pytest.fixture
def warning_records():
    """Collect WARNING records of the current MMLogger (``print_log(...,
    logger='current')``)."""
    records: List[logging.LogRecord] = []

    class _Collector(logging.Handler):

        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = _Collector(level=logging.WARNING)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _messages(records: List[logging.LogRecord]) -> List[str]:
    return [r.getMessage() for r in records]


def _assert_same_weights(model: nn.Module, state_dict: dict) -> None:
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state_dict[key])


# ---------------------------------------------------------------------------
# 1. torch >= 2.6 checkpoint loading
# ---------------------------------------------------------------------------
def test_original_local_loader_rejects_training_checkpoint(trained):
    original = compat.get_original(
        'mmengine.runner.checkpoint.load_from_local')
    assert original is MM_CHECKPOINT.load_from_local
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        original(trained['ckpt'], 'cpu')


def test_load_checkpoint_falls_back_with_warning(trained, warning_records):
    assert CheckpointLoader._schemes[''] is compat.load_from_local
    ckpt = CheckpointLoader.load_checkpoint(trained['ckpt'], 'cpu')
    assert {'state_dict', 'message_hub', 'optimizer'} <= set(ckpt)
    assert ckpt['meta']['epoch'] == 1

    messages = _messages(warning_records)
    assert len(messages) == 1
    assert trained['ckpt'] in messages[0]
    assert 'weights_only' in messages[0]
    assert 'HistoryBuffer' in messages[0]
    assert compat.WEIGHTS_ONLY_ENV in messages[0]


def test_state_dict_file_loads_weights_only_without_warning(
        tmp_path, monkeypatch, warning_records):
    path = str(tmp_path / 'weights.pth')
    state_dict = ToyModel().state_dict()
    torch.save(state_dict, path)

    calls = []
    torch_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return torch_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)
    loaded = CheckpointLoader.load_checkpoint(path, 'cpu')
    assert calls == [True]
    assert warning_records == []
    for key, value in state_dict.items():
        torch.testing.assert_close(loaded[key], value)


def test_weights_only_env_forbids_fallback(trained, monkeypatch):
    monkeypatch.setenv(compat.WEIGHTS_ONLY_ENV, '1')
    with pytest.raises(pickle.UnpicklingError) as info:
        CheckpointLoader.load_checkpoint(trained['ckpt'], 'cpu')
    message = str(info.value)
    assert trained['ckpt'] in message
    assert compat.WEIGHTS_ONLY_ENV in message

    monkeypatch.setenv(compat.WEIGHTS_ONLY_ENV, '0')
    assert 'state_dict' in CheckpointLoader.load_checkpoint(
        trained['ckpt'], 'cpu')


def test_missing_checkpoint_names_path(tmp_path):
    missing = str(tmp_path / 'nope' / 'epoch_9.pth')
    with pytest.raises(FileNotFoundError, match='epoch_9.pth') as err:
        CheckpointLoader.load_checkpoint(missing)
    assert 'docs/pretrained.md' in str(err.value)


def test_remote_schemes_keep_mmengine_loaders():
    loader = CheckpointLoader._get_checkpoint_loader(
        'https://download.openmmlab.com/x.pth')
    assert loader is MM_CHECKPOINT.load_from_http
    assert CheckpointLoader._get_checkpoint_loader(
        'http://a/b.pth') is MM_CHECKPOINT.load_from_http
    assert CheckpointLoader._get_checkpoint_loader(
        'work_dirs/epoch_1.pth') is compat.load_from_local


def test_runner_load_checkpoint(trained, tmp_path, monkeypatch):
    runner = _build_runner(tmp_path / 'load')
    runner.load_checkpoint(trained['ckpt'])
    _assert_same_weights(runner.model, trained['state_dict'])

    # The unpatched mmengine path fails on the same file.
    monkeypatch.setitem(
        CheckpointLoader._schemes, '',
        compat.get_original('mmengine.runner.checkpoint.load_from_local'))
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        runner.load_checkpoint(trained['ckpt'])


def test_runner_resume(trained, tmp_path):
    work_dir = tmp_path / 'resume'
    runner = _build_runner(
        work_dir,
        load_from=trained['ckpt'],
        resume=True,
        train_cfg=dict(by_epoch=True, max_epochs=2))
    runner.train()
    assert runner.epoch == 2 and runner.iter == 4
    # Resumed after epoch 1, so only epoch 2 ran in this work_dir.
    assert not osp.exists(work_dir / 'epoch_1.pth')
    assert osp.isfile(work_dir / 'epoch_2.pth')


def test_runner_load_from_then_test(trained, tmp_path):
    # ``tools/test.py CONFIG CKPT`` sets ``load_from`` and calls test().
    runner = _build_runner(
        tmp_path / 'test', load_from=trained['ckpt'], **_test_kwargs())
    metrics = runner.test()
    assert 'toy/mae' in metrics
    _assert_same_weights(runner.model, trained['state_dict'])


# ---------------------------------------------------------------------------
# 2. setuptools >= 82: pkg_resources
# ---------------------------------------------------------------------------
@pytest.fixture
def no_pkg_resources(monkeypatch):
    """Make ``import pkg_resources`` fail, as with setuptools >= 82."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        return  # Really absent (setuptools >= 82).
    monkeypatch.setitem(sys.modules, 'pkg_resources', None)


def test_mmpretrain_base_config(tmp_path, monkeypatch, no_pkg_resources):
    cfg_file = tmp_path / 'fer_r18.py'
    cfg_file.write_text(
        "_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'\n"
        'model = dict(head=dict(num_classes=7))\n')
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.backbone.depth == 18
    assert cfg.model.head.num_classes == 7

    # The original helpers, on the original Config.fromfile path, fail.
    config_module = sys.modules['mmengine.config.config']
    for name in ('is_installed', 'get_installed_path'):
        monkeypatch.setattr(
            config_module, name,
            compat.get_original(f'mmengine.utils.package_utils.{name}'))
    with pytest.raises(ImportError, match='pkg_resources'):
        Config.fromfile(str(cfg_file))


def test_original_package_helpers_need_pkg_resources(no_pkg_resources):
    for name in ('is_installed', 'get_installed_path'):
        original = compat.get_original(f'mmengine.utils.package_utils.{name}')
        with pytest.raises(ImportError, match='pkg_resources'):
            original('mmpretrain')


def test_package_helpers_patched_everywhere(no_pkg_resources):
    import mmengine.hub.hub  # noqa: F401
    import mmengine.utils
    for mod_name in ('mmengine.utils', 'mmengine.utils.package_utils',
                     'mmengine.config.config', 'mmengine.hub.hub'):
        module = sys.modules[mod_name]
        for name in ('is_installed', 'get_installed_path'):
            if hasattr(module, name):
                assert getattr(module, name) is getattr(compat,
                                                        name), (mod_name, name)

    assert mmengine.utils.is_installed('mmpretrain')
    assert mmengine.utils.is_installed('mmcv')
    assert not mmengine.utils.is_installed('mmfer_no_such_package_x')
    assert mmengine.utils.get_installed_path('mmengine') == osp.dirname(
        mmengine.__file__)
    assert mmengine.utils.get_installed_path('mmpretrain') == osp.dirname(
        importlib.util.find_spec('mmpretrain').origin)
    assert mmengine.utils.get_installed_path('mmcv-lite') == osp.dirname(
        mmcv.__file__)
    with pytest.raises(ImportError):
        mmengine.utils.get_installed_path('mmfer_no_such_package_x')


# ---------------------------------------------------------------------------
# 3. numpy 2: ColorJitter hue
# ---------------------------------------------------------------------------
def _image(seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(
        0, 256, (16, 16, 3), dtype=np.uint8)


def test_color_jitter_hue(monkeypatch):
    from mmpretrain.registry import TRANSFORMS
    transform = TRANSFORMS.build(dict(type='ColorJitter', hue=0.5))
    img = _image()

    def run_seeds():
        for seed in range(40):
            np.random.seed(seed)
            out = transform(dict(img=img.copy()))['img']
            assert out.shape == img.shape and out.dtype == np.uint8

    run_seeds()
    monkeypatch.setattr(
        mmcv, 'adjust_hue',
        compat.get_original('mmcv.image.photometric.adjust_hue'))
    with pytest.raises(OverflowError):
        run_seeds()


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_matches_original_and_wraps(backend):
    original = compat.get_original('mmcv.image.photometric.adjust_hue')
    assert mmcv.adjust_hue is compat.adjust_hue
    assert mmcv.image.adjust_hue is compat.adjust_hue
    img = _image(1)
    for factor in (0.0, 0.01, 0.1, 0.25, 0.4999, 0.5):
        np.testing.assert_array_equal(
            compat.adjust_hue(img, factor, backend=backend),
            original(img, factor, backend=backend))

    with pytest.raises(OverflowError):
        original(img, -0.25, backend=backend)
    # Negative factors rotate the hue cyclically (numpy 1 wrapped the
    # uint8 sum): check on saturated, bright colours of every hue that the
    # output hue is the input hue plus the shift modulo 256, not clamped.
    hue = np.arange(0, 256, 4, dtype=np.uint8).reshape(8, 8)
    full = np.full_like(hue, 255)
    vivid = cv2.cvtColor(np.dstack([hue, full, full]), cv2.COLOR_HSV2BGR_FULL)

    def hue_of(bgr):
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV_FULL)[..., 0].astype(int)

    for factor in (-0.5, -0.25, -0.01):
        out = compat.adjust_hue(vivid, factor, backend=backend)
        error = (hue_of(out) - hue_of(vivid) - int(factor * 255)) % 256
        assert np.minimum(error, 256 - error).max() <= 2, factor

    with pytest.raises(ValueError):
        compat.adjust_hue(img, 0.6, backend=backend)


# ---------------------------------------------------------------------------
# 4. persistent_workers with num_workers=0
# ---------------------------------------------------------------------------
def test_build_dataloader_num_workers_zero(warning_records):
    cfg = dict(_dataloader(), persistent_workers=True)
    loader = Runner.build_dataloader(cfg)
    assert loader.persistent_workers is False
    assert sum(len(batch['inputs']) for batch in loader) == 8
    assert cfg['persistent_workers'] is True  # the caller's dict is kept
    messages = _messages(warning_records)
    assert len(messages) == 1 and 'persistent_workers' in messages[0]

    original = compat.get_original('mmengine.runner.Runner.build_dataloader')
    with pytest.raises(ValueError, match='persistent_workers'):
        original(cfg)


def test_build_dataloader_keeps_persistent_workers_with_workers(
        warning_records):
    loader = Runner.build_dataloader(
        dict(_dataloader(), num_workers=1, persistent_workers=True))
    assert loader.persistent_workers is True  # no worker starts here
    assert warning_records == []


# ---------------------------------------------------------------------------
# 5. Atomic checkpoint writing
# ---------------------------------------------------------------------------
class _FailingFile:
    """Writes half of the first ``write`` and raises, like a full disk or a
    process dying mid-write."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, 'No space left on device (simulated)')

    def __getattr__(self, item: str) -> Any:
        return getattr(self._file, item)

    def __enter__(self) -> '_FailingFile':
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()


def _fail_writes_to(monkeypatch, name_part: str) -> None:
    """Make files whose name contains ``name_part`` fail when written,
    including the temporary files of the atomic writers."""
    builtin_open = builtins.open

    def failing_open(file, mode='r', *args, **kwargs):
        handle = builtin_open(file, mode, *args, **kwargs)
        if (isinstance(file, (str, os.PathLike))
                and name_part in osp.basename(os.fspath(file))
                and any(flag in mode for flag in 'wxa')):
            return _FailingFile(handle)
        return handle

    monkeypatch.setattr(builtins, 'open', failing_open)


def _read(path) -> bytes:
    with open(path, 'rb') as f:
        return f.read()


def test_failed_checkpoint_write_keeps_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(4)}}, path)
    old = _read(path)

    _fail_writes_to(monkeypatch, 'epoch_1.pth')
    with pytest.raises(OSError, match='simulated'):
        save_checkpoint({'state_dict': {'w': torch.zeros(1000)}}, path)
    assert _read(path) == old
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temp file left
    assert torch.load(path)['state_dict']['w'].shape == (4, )

    # mmengine's own LocalBackend.put truncates the old checkpoint.
    monkeypatch.setattr(
        LocalBackend, 'put',
        compat.get_original('mmengine.fileio.backends.LocalBackend.put'))
    with pytest.raises(OSError, match='simulated'):
        save_checkpoint({'state_dict': {'w': torch.zeros(1000)}}, path)
    assert _read(path) != old


def test_failed_torch_save_keeps_old_file(tmp_path, monkeypatch):
    # mmengine serialises into memory before ``put``, so this also held
    # before the patch; it guards against writing straight to the target.
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(4)}}, path)
    old = _read(path)

    def failing_save(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 partial')
        raise pickle.PicklingError('simulated pickler failure')

    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(pickle.PicklingError):
        save_checkpoint({'state_dict': {'w': torch.zeros(1000)}}, path)
    assert _read(path) == old
    assert os.listdir(tmp_path) == ['epoch_1.pth']


def test_put_text_is_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / 'scalars.txt')
    backend = LocalBackend()
    backend.put_text('old', path)
    _fail_writes_to(monkeypatch, 'scalars.txt')
    with pytest.raises(OSError, match='simulated'):
        backend.put_text('new content', path)
    assert _read(path) == b'old'
    assert os.listdir(tmp_path) == ['scalars.txt']

    monkeypatch.setattr(
        LocalBackend, 'put_text',
        compat.get_original('mmengine.fileio.backends.LocalBackend.put_text'))
    with pytest.raises(OSError, match='simulated'):
        backend.put_text('new content', path)
    assert _read(path) != b'old'


def test_failed_last_checkpoint_write_keeps_old_content(
        trained, tmp_path, monkeypatch):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    last_file = work_dir / 'last_checkpoint'
    last_file.write_text(trained['ckpt'])
    # ``tools/train.py --resume``: auto-resume through ``last_checkpoint``.
    runner = _build_runner(
        work_dir, resume=True, train_cfg=dict(by_epoch=True, max_epochs=2))
    runner.train()
    assert runner.iter == 4 and not osp.exists(work_dir / 'epoch_1.pth')
    old = last_file.read_text()
    assert old == str(work_dir / 'epoch_2.pth')

    hook = next(h for h in runner.hooks if isinstance(h, CheckpointHook))
    _fail_writes_to(monkeypatch, 'last_checkpoint')
    with pytest.raises(OSError, match='simulated'):
        hook._save_checkpoint(runner)  # saves epoch_3.pth first
    assert osp.isfile(work_dir / 'epoch_3.pth')
    assert last_file.read_text() == old
    assert not [n for n in os.listdir(work_dir) if n.endswith('.tmp')]

    # Unpatched, the hook module has no ``open`` of its own and uses the
    # builtin one (here the failing one), which truncates the file.
    assert compat.get_original('mmengine.hooks.checkpoint_hook.open') is (
        _BUILTIN_OPEN)
    monkeypatch.delattr(CHECKPOINT_HOOK, 'open')
    with pytest.raises(OSError, match='simulated'):
        hook._save_checkpoint(runner)
    assert last_file.read_text() != old


def test_runner_writes_loadable_checkpoints(trained):
    work_dir = trained['work_dir']
    assert LocalBackend.put is compat._atomic_put
    assert CHECKPOINT_HOOK.open is compat.atomic_open
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == trained['ckpt']
    ckpt = CheckpointLoader.load_checkpoint(trained['ckpt'], 'cpu')
    for key, value in trained['state_dict'].items():
        torch.testing.assert_close(ckpt['state_dict'][key], value)
    leftovers = [n for n in os.listdir(work_dir) if n.endswith('.tmp')]
    assert leftovers == []


# ---------------------------------------------------------------------------
# apply_compat_patches
# ---------------------------------------------------------------------------
def test_apply_compat_patches_is_idempotent():
    compat.apply_compat_patches()
    state = (CheckpointLoader._schemes[''], mmcv.adjust_hue,
             Runner.__dict__['build_dataloader'].__func__, LocalBackend.put,
             LocalBackend.put_text, CHECKPOINT_HOOK.open,
             sys.modules['mmengine.config.config'].is_installed)
    for _ in range(3):
        compat.apply_compat_patches()
    assert state == (CheckpointLoader._schemes[''], mmcv.adjust_hue,
                     Runner.__dict__['build_dataloader'].__func__,
                     LocalBackend.put, LocalBackend.put_text,
                     CHECKPOINT_HOOK.open,
                     sys.modules['mmengine.config.config'].is_installed)
    # The saved originals are mmengine's/mmcv's, never a patched function.
    for name in compat._ORIGINALS:
        assert not getattr(compat.get_original(name), '_mmfer_compat',
                           False), name
    assert compat.get_original('mmengine.hooks.checkpoint_hook.open') is (
        _BUILTIN_OPEN)
