# Copyright (c) OpenMMLab. All rights reserved.
"""Tests of :mod:`mmfer.utils.compat`.

Every patch is tested three ways: the patched behaviour works; the saved
original (``compat.get_original``) or the original mmengine code path fails
on the same input, so that no test can pass without its patch; and its gate
applies it when the probe sees the defect and leaves the original in place
when the probe says the defect is absent.
"""
import builtins
import copy
import errno
import importlib
import importlib.machinery
import importlib.util
import logging
import os
import os.path as osp
import pickle
import sys
import types
import uuid
import warnings
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
from mmengine.logging import HistoryBuffer, MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader, Runner
from mmengine.runner.checkpoint import save_checkpoint
from mmengine.visualization import Visualizer
from torch.utils.data import Dataset

from mmfer.utils import compat, version_check
from mmfer.utils.compat import (allow_pickle, atomic_checkpoints,
                                checkpoint_loading, history_buffer, hue_shift,
                                patching)
from mmfer.utils.compat import package_utils as package_fix
from tool_runs import load_tool, run

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
    losses = runner.message_hub.get_scalar('train/loss').data[0].copy()
    _release_new_instances(before)
    return dict(
        work_dir=str(work_dir),
        ckpt=osp.join(str(work_dir), 'epoch_1.pth'),
        state_dict=state_dict,
        losses=losses)


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
# 1. torch >= 2.6: safe checkpoint loading
# ---------------------------------------------------------------------------
@pytest.fixture
def load_calls(monkeypatch):
    """Record the ``weights_only`` argument of every ``torch.load``."""
    calls: List[Any] = []
    torch_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return torch_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)
    return calls


def _old_style_checkpoint(trained, path: str) -> str:
    """Re-save the trained checkpoint as mmengine's own ``HistoryBuffer``
    pickles it (through ``builtins.getattr``)."""
    ckpt = CheckpointLoader.load_checkpoint(trained['ckpt'], 'cpu')
    original = compat.get_original(
        'mmengine.logging.HistoryBuffer.__getstate__')
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__', original)
        torch.save(ckpt, path)
    return path


_CALLS: List[str] = []


def _record_call() -> dict:
    _CALLS.append('called')
    return {}


class _Payload:
    """Runs :func:`_record_call` when unpickled."""

    def __reduce__(self):
        return _record_call, ()


def test_probe_sees_weights_only_default(monkeypatch):
    assert checkpoint_loading.torch_load_defaults_to_weights_only()
    # torch's own switch back to full unpickling removes the defect.
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the probe's own load stays quiet
        assert not checkpoint_loading.torch_load_defaults_to_weights_only()


@pytest.mark.parametrize('defect', [True, False])
def test_checkpoint_loader_gate(monkeypatch, defect):
    original = compat.get_original(
        'mmengine.runner.checkpoint.load_from_local')
    monkeypatch.setitem(CheckpointLoader._schemes, '', original)
    monkeypatch.setattr(checkpoint_loading, 'torch_load_defaults_to_weights_only',
                        lambda: defect)
    assert checkpoint_loading.patch_checkpoint_loader() is defect
    expected = checkpoint_loading.load_from_local if defect else original
    assert CheckpointLoader._schemes[''] is expected


def test_original_local_loader_rejects_training_checkpoint(trained):
    original = compat.get_original(
        'mmengine.runner.checkpoint.load_from_local')
    assert original is MM_CHECKPOINT.load_from_local
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        original(trained['ckpt'], 'cpu')


def test_training_checkpoint_holds_only_allowed_globals(trained):
    # Everything but tensors, as the pickle names it; no callable such as
    # builtins.getattr.
    assert sorted(torch.serialization.get_unsafe_globals_in_checkpoint(
        trained['ckpt'])) == [
            'mmengine.logging.history_buffer.HistoryBuffer',
            'numpy._core.multiarray._reconstruct',
            'numpy._core.multiarray.scalar', 'numpy.dtype', 'numpy.ndarray'
        ]


def test_training_checkpoint_loads_weights_only(trained, load_calls,
                                                warning_records):
    assert CheckpointLoader._schemes[''] is checkpoint_loading.load_from_local
    allowed = set(torch.serialization.get_safe_globals())
    ckpt = CheckpointLoader.load_checkpoint(trained['ckpt'], 'cpu')
    assert load_calls == [True]
    assert warning_records == []
    # The allow-list is only active while mmfer's loader runs.
    assert set(torch.serialization.get_safe_globals()) == allowed
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 2
    hub = ckpt['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    np.testing.assert_allclose(loss.data[0], trained['losses'])
    assert loss.mean() == pytest.approx(np.mean(trained['losses']))
    assert isinstance(hub['runtime_info']['eta'], np.float64)
    assert hub['runtime_info']['max_iters'] == 2
    for key, value in trained['state_dict'].items():
        torch.testing.assert_close(ckpt['state_dict'][key], value)


def test_loading_keeps_globals_the_user_allowed(trained, monkeypatch):
    # torch keeps the allow-list in this module global; restored afterwards.
    monkeypatch.setattr(torch._weights_only_unpickler,
                        '_marked_safe_globals_set',
                        set(torch.serialization.get_safe_globals()))
    entry = checkpoint_loading.checkpoint_safe_globals()[0]
    torch.serialization.add_safe_globals([entry])
    CheckpointLoader.load_checkpoint(trained['ckpt'], 'cpu')
    assert entry in torch.serialization.get_safe_globals()


def test_old_checkpoint_needs_opt_in(trained, tmp_path, monkeypatch,
                                     load_calls, warning_records):
    path = _old_style_checkpoint(trained, str(tmp_path / 'old.pth'))
    monkeypatch.setenv(allow_pickle.ALLOW_PICKLE_ENV, '0')
    load_calls.clear()
    with pytest.raises(checkpoint_loading.UnsafeCheckpointError) as info:
        CheckpointLoader.load_checkpoint(path, 'cpu')
    message = str(info.value)
    for part in (path, '`builtins.getattr`', 'MMFER_ALLOW_PICKLE=1',
                 '--allow-pickle'):
        assert part in message
    assert load_calls == [True]  # no silent fallback
    assert warning_records == []

    monkeypatch.setenv(allow_pickle.ALLOW_PICKLE_ENV, '1')
    ckpt = CheckpointLoader.load_checkpoint(path, 'cpu')
    assert load_calls == [True, True, False]
    assert ckpt['meta']['epoch'] == 1
    messages = _messages(warning_records)
    assert len(messages) == 1
    assert path in messages[0] and 'builtins.getattr' in messages[0]
    assert allow_pickle.ALLOW_PICKLE_ENV in messages[0]


def test_refusal_names_class_built_while_loading(tmp_path, monkeypatch):
    # A dtype class is only created while unpickling, so torch's static
    # scan does not list it; the error still names it.
    path = str(tmp_path / 'int32.pth')
    torch.save({'ids': np.arange(3, dtype=np.int32)}, path)
    monkeypatch.setenv(allow_pickle.ALLOW_PICKLE_ENV, '0')
    with pytest.raises(checkpoint_loading.UnsafeCheckpointError,
                       match=r'global\(s\) `numpy.dtypes.Int32DType`'):
        CheckpointLoader.load_checkpoint(path, 'cpu')


def test_code_in_checkpoint_never_runs_without_opt_in(tmp_path, monkeypatch):
    path = str(tmp_path / 'payload.pth')
    torch.save({'state_dict': {}, 'payload': _Payload()}, path)
    monkeypatch.setenv(allow_pickle.ALLOW_PICKLE_ENV, '0')
    _CALLS.clear()
    with pytest.raises(checkpoint_loading.UnsafeCheckpointError,
                       match=f'`{__name__}._record_call`'):
        CheckpointLoader.load_checkpoint(path, 'cpu')
    assert _CALLS == []
    monkeypatch.setenv(allow_pickle.ALLOW_PICKLE_ENV, 'yes')
    assert CheckpointLoader.load_checkpoint(path, 'cpu')['payload'] == {}
    assert _CALLS == ['called']


def test_state_dict_file_loads_weights_only_without_warning(
        tmp_path, load_calls, warning_records):
    path = str(tmp_path / 'weights.pth')
    state_dict = ToyModel().state_dict()
    torch.save(state_dict, path)
    loaded = CheckpointLoader.load_checkpoint(path, 'cpu')
    assert load_calls == [True]
    assert warning_records == []
    for key, value in state_dict.items():
        torch.testing.assert_close(loaded[key], value)


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_allow_pickle_flag(monkeypatch, tool):
    module = load_tool(f'tools/{tool}')
    argv = [tool, 'cfg.py'] + (['ckpt.pth'] if tool == 'test.py' else [])
    # Restored after the test: parse_args sets both.
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv(allow_pickle.ALLOW_PICKLE_ENV, '0')
    monkeypatch.setattr(sys, 'argv', argv)
    module.parse_args()
    assert not allow_pickle.pickle_allowed()
    monkeypatch.setattr(sys, 'argv', argv + ['--allow-pickle'])
    module.parse_args()
    assert allow_pickle.pickle_allowed()


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
        'work_dirs/epoch_1.pth') is checkpoint_loading.load_from_local


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


def test_runner_resume(trained, tmp_path, load_calls):
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
    assert load_calls == [True]
    # The loss history of epoch 1 came back with the message hub.
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    np.testing.assert_allclose(losses[:2], trained['losses'])
    assert len(losses) == 4


def test_runner_load_from_then_test(trained, tmp_path, load_calls):
    # ``tools/test.py CONFIG CKPT`` sets ``load_from`` and calls test().
    runner = _build_runner(
        tmp_path / 'test', load_from=trained['ckpt'], **_test_kwargs())
    metrics = runner.test()
    # the MAE of the trained weights on the toy set, by hand
    data, weights = ToyDataset(), trained['state_dict']
    pred = data.inputs @ weights['linear.weight'].t() + weights['linear.bias']
    assert metrics['toy/mae'] == pytest.approx(
        float((pred - data.targets).abs().mean()), rel=1e-5)
    _assert_same_weights(runner.model, trained['state_dict'])
    assert load_calls == [True]


# ---------------------------------------------------------------------------
# 2. HistoryBuffer state
# ---------------------------------------------------------------------------
def _buffer() -> HistoryBuffer:
    return HistoryBuffer([1.0, 2.0, 6.0], [1, 1, 1])


def test_history_buffer_probe():
    original = compat.get_original(
        'mmengine.logging.HistoryBuffer.__getstate__')
    assert history_buffer.history_buffer_pickles_functions(original)
    assert not history_buffer.history_buffer_pickles_functions()
    # mmengine's version pickles functions and changes the live buffer.
    buffer = _buffer()
    assert HistoryBuffer.min in original(buffer)['statistics_methods'].values()
    assert 'statistics_methods' in buffer.__dict__


@pytest.mark.parametrize('defect', [True, False])
def test_history_buffer_gate(monkeypatch, defect):
    originals = {
        name: compat.get_original(f'mmengine.logging.HistoryBuffer.{name}')
        for name in ('__getstate__', '__setstate__')
    }
    for name, original in originals.items():
        monkeypatch.setattr(HistoryBuffer, name, original)
    monkeypatch.setattr(history_buffer, 'history_buffer_pickles_functions',
                        lambda: defect)
    assert history_buffer.patch_history_buffer_state() is defect
    for name, original in originals.items():
        assert (HistoryBuffer.__dict__[name] is original) is not defect


def test_history_buffer_pickles_plain_state():
    buffer = _buffer()
    data = pickle.dumps(buffer)
    assert b'getattr' not in data and b'statistics' not in data
    assert 'statistics_methods' not in buffer.__dict__
    loaded = pickle.loads(data)
    np.testing.assert_array_equal(loaded.data[0], [1.0, 2.0, 6.0])
    assert loaded.mean() == 3.0 and loaded.statistics('max') == 6.0
    assert copy.deepcopy(buffer).current() == 6.0


def test_history_buffer_ignores_pickled_statistics(monkeypatch):
    # A file cannot swap the statistics every buffer of the process uses.
    # (setitem restores the registry should the patch fail to protect it.)
    monkeypatch.setitem(HistoryBuffer._statistics_methods, 'mean',
                        HistoryBuffer.mean)
    state = dict(_buffer().__getstate__(), statistics_methods=dict(mean=max))
    loaded = HistoryBuffer.__new__(HistoryBuffer)
    loaded.__setstate__(state)
    assert HistoryBuffer._statistics_methods['mean'] is HistoryBuffer.mean
    assert loaded.statistics('mean') == 3.0
    assert 'statistics_methods' not in loaded.__dict__


# ---------------------------------------------------------------------------
# 3. setuptools >= 82: pkg_resources
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
                assert getattr(module, name) is getattr(package_fix, name), (mod_name, name)

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


def test_pkg_resources_probe(monkeypatch, no_pkg_resources):
    assert package_fix.pkg_resources_missing()
    fake = types.ModuleType('pkg_resources')
    fake.__spec__ = importlib.machinery.ModuleSpec('pkg_resources', None)
    monkeypatch.setitem(sys.modules, 'pkg_resources', fake)
    assert not package_fix.pkg_resources_missing()


@pytest.mark.parametrize('defect', [True, False])
def test_package_utils_gate(monkeypatch, defect):
    package_utils = sys.modules['mmengine.utils.package_utils']
    names = ('is_installed', 'get_installed_path', 'package2module')
    originals = {
        name: compat.get_original(f'mmengine.utils.package_utils.{name}')
        for name in names
    }
    config_module = sys.modules['mmengine.config.config']
    for name, original in originals.items():
        monkeypatch.setattr(package_utils, name, original)
    monkeypatch.setattr(config_module, 'is_installed',
                        originals['is_installed'])
    monkeypatch.setattr(package_fix, 'pkg_resources_missing', lambda: defect)
    assert package_fix.patch_package_utils() is defect
    for name, original in originals.items():
        patched = getattr(package_utils, name) is getattr(package_fix, name)
        assert patched is defect
    assert (config_module.is_installed is package_fix.is_installed) is defect


# ---------------------------------------------------------------------------
# 4. numpy 2: ColorJitter hue
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
    assert mmcv.adjust_hue is hue_shift.adjust_hue
    assert mmcv.image.adjust_hue is hue_shift.adjust_hue
    img = _image(1)
    for factor in (0.0, 0.01, 0.1, 0.25, 0.4999, 0.5):
        np.testing.assert_array_equal(
            hue_shift.adjust_hue(img, factor, backend=backend),
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
        out = hue_shift.adjust_hue(vivid, factor, backend=backend)
        error = (hue_of(out) - hue_of(vivid) - int(factor * 255)) % 256
        assert np.minimum(error, 256 - error).max() <= 2, factor

    with pytest.raises(ValueError):
        hue_shift.adjust_hue(img, 0.6, backend=backend)


def test_hue_probe():
    original = compat.get_original('mmcv.image.photometric.adjust_hue')
    assert hue_shift.hue_shift_overflows(original)
    assert not hue_shift.hue_shift_overflows(hue_shift.adjust_hue)


@pytest.mark.parametrize('defect', [True, False])
def test_adjust_hue_gate(monkeypatch, defect):
    original = compat.get_original('mmcv.image.photometric.adjust_hue')
    photometric = sys.modules['mmcv.image.photometric']
    for module in (photometric, mmcv.image, mmcv):
        monkeypatch.setattr(module, 'adjust_hue', original)
    monkeypatch.setattr(hue_shift, 'hue_shift_overflows', lambda func: defect)
    assert hue_shift.patch_adjust_hue() is defect
    for module in (photometric, mmcv.image, mmcv):
        assert (module.adjust_hue is hue_shift.adjust_hue) is defect


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


def test_atomic_write_probes():
    for name in ('put', 'put_text'):
        original = compat.get_original(
            f'mmengine.fileio.backends.LocalBackend.{name}')
        assert atomic_checkpoints.writes_in_place(original), name
        assert not atomic_checkpoints.writes_in_place(
            getattr(LocalBackend, name))
    assert atomic_checkpoints.hook_opens_for_writing(CHECKPOINT_HOOK)
    assert not atomic_checkpoints.hook_opens_for_writing(version_check)


def _writes_nested(path):
    with open(osp.join(path, 'x'), mode='w', encoding='utf-8') as f:
        f.write('x')


def _reads_then_writes(path):
    with open(path, 'rb') as f:
        data = f.read()
    return lambda: open(path, 'xb').write(data)  # a nested function


def _reads(path):
    with open(osp.join(path, 'w'), 'rb') as f:  # 'w' is no mode here
        return f.read(), 'w'


@pytest.mark.parametrize('func,writes', [(_writes_nested, True),
                                         (_reads_then_writes, True),
                                         (_reads, False),
                                         (atomic_checkpoints._atomic_put,
                                          False)])
def test_open_for_writing_probe(func, writes):
    assert atomic_checkpoints.calls_open_for_writing(func.__code__) is writes


@pytest.mark.parametrize('defect', [True, False])
def test_atomic_writes_gate(monkeypatch, defect):
    for name in ('put', 'put_text'):
        original = compat.get_original(
            f'mmengine.fileio.backends.LocalBackend.{name}')
        monkeypatch.setattr(LocalBackend, name, original)
    monkeypatch.delattr(CHECKPOINT_HOOK, 'open')
    monkeypatch.setattr(atomic_checkpoints, 'writes_in_place',
                        lambda put: defect)
    monkeypatch.setattr(atomic_checkpoints, 'hook_opens_for_writing',
                        lambda module: defect)
    assert atomic_checkpoints.patch_atomic_checkpoint_writes() is defect
    assert (LocalBackend.put is atomic_checkpoints._atomic_put) is defect
    assert (LocalBackend.put_text is
            atomic_checkpoints._atomic_put_text) is defect
    assert (CHECKPOINT_HOOK.__dict__.get('open') is
            atomic_checkpoints.atomic_open) is defect


def test_runner_writes_loadable_checkpoints(trained):
    work_dir = trained['work_dir']
    assert LocalBackend.put is atomic_checkpoints._atomic_put
    assert CHECKPOINT_HOOK.open is atomic_checkpoints.atomic_open
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
    assert compat.apply_compat_patches() == [
        'safe checkpoint loading', 'plain HistoryBuffer state',
        'package helpers', 'hue shift', 'atomic checkpoint writes',
        'figure trimming', 'quiet checkpoints'
    ]

    def state():
        return (CheckpointLoader._schemes[''], mmcv.adjust_hue,
                HistoryBuffer.__dict__['__getstate__'], LocalBackend.put,
                LocalBackend.put_text, CHECKPOINT_HOOK.open,
                sys.modules['mmengine.config.config'].is_installed)

    before = state()
    for _ in range(3):
        compat.apply_compat_patches()
    assert state() == before
    # The saved originals are mmengine's/mmcv's, never a patched function.
    for name in patching._ORIGINALS:
        assert not getattr(compat.get_original(name), '_mmfer_compat',
                           False), name
    assert compat.get_original('mmengine.hooks.checkpoint_hook.open') is (
        _BUILTIN_OPEN)


def test_dataloader_building_is_mmengine_own():
    # ``persistent_workers`` with ``num_workers=0`` is left to mmpretrain's
    # ``tools/train.py --no-persistent-workers``.
    cfg = dict(_dataloader(), persistent_workers=True)
    with pytest.raises(ValueError, match='persistent_workers'):
        Runner.build_dataloader(cfg)


# ---------------------------------------------------------------------------
# import mmfer: deferred, file-free patching
# ---------------------------------------------------------------------------
_PATCHES_IN_PLACE = """
import mmcv
import mmengine.config.config as config_module
import mmengine.hooks.checkpoint_hook as hook_module
import mmengine.utils.package_utils as package_utils
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from mmfer.utils.compat.atomic_checkpoints import atomic_open
from mmfer.utils.compat.patching import is_patched
patched = [CheckpointLoader._schemes[''], HistoryBuffer.__getstate__,
           package_utils.is_installed, config_module.is_installed,
           mmcv.adjust_hue, LocalBackend.put, LocalBackend.put_text]
assert all(is_patched(obj) for obj in patched), patched
assert hook_module.open is atomic_open
"""


def test_import_mmfer_patches_when_the_stack_is_imported():
    code = ('import sys\n'
            'import mmfer\n'
            "stack = {'torch', 'mmengine', 'mmcv', 'mmpretrain'}\n"
            'assert not stack & set(sys.modules), stack & set(sys.modules)\n'
            'import mmengine.runner\n' + _PATCHES_IN_PLACE)
    run(['-c', code])


def test_import_mmfer_patches_an_imported_stack():
    run(['-c', 'import mmengine.runner, mmcv, mmfer\n' + _PATCHES_IN_PLACE])


def test_probes_touch_no_file():
    # Undo what ``import mmfer`` applied, so that apply_compat_patches()
    # probes everything again, with an audit hook watching the filesystem.
    code = """
import sys
import matplotlib._tight_bbox as tight_bbox
import mmcv.image.photometric as photometric
import mmengine.hooks.checkpoint_hook as hook_module
import mmengine.utils.package_utils as package_utils
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from mmfer.utils.compat import apply_compat_patches, get_original

CheckpointLoader._schemes[''] = get_original(
    'mmengine.runner.checkpoint.load_from_local')
for name in ('__getstate__', '__setstate__'):
    setattr(HistoryBuffer, name,
            get_original(f'mmengine.logging.HistoryBuffer.{name}'))
for name in ('is_installed', 'get_installed_path', 'package2module'):
    setattr(package_utils, name,
            get_original(f'mmengine.utils.package_utils.{name}'))
photometric.adjust_hue = get_original('mmcv.image.photometric.adjust_hue')
tight_bbox.adjust_bbox.__defaults__ = get_original(
    'matplotlib._tight_bbox.adjust_bbox.__defaults__')
import mmengine.runner.checkpoint as checkpoint_module
for module in (checkpoint_module, hook_module):
    module.FileClient = get_original(f'{module.__name__}.FileClient')
for name in ('put', 'put_text'):
    setattr(LocalBackend, name,
            get_original(f'mmengine.fileio.backends.LocalBackend.{name}'))
del hook_module.open

events = []


def audit(event, args):
    # Finding pkg_resources lists sys.path folders; nothing else may touch
    # the filesystem.
    if event == 'open' or (event.partition('.')[0] in ('os', 'shutil',
                                                        'tempfile')
                           and event not in ('os.listdir', 'os.scandir')):
        events.append((event, args))


sys.addaudithook(audit)
applied = apply_compat_patches()
assert len(applied) == 7, applied
assert events == [], events
"""
    run(['-c', code])



def test_apply_compat_patches_right_after_import_mmfer():
    """Before mmengine is imported, applying the fixes imports each
    patched package first; a fix module importing its own package used to
    run its import hook half-initialised."""
    proc = run([
        '-c', 'import mmfer; from mmfer.utils import compat; '
        'print(compat.apply_compat_patches())'
    ])
    assert proc.stdout.strip().endswith(
        "'figure trimming', 'quiet checkpoints']")


# ---------------------------------------------------------------------------
# 6. Figure trimming (mmpretrain's stock browse_dataset.py)
# ---------------------------------------------------------------------------
def test_adjust_bbox_gate(monkeypatch):
    from matplotlib import _tight_bbox

    from mmfer.utils.compat import tight_bbox
    func = _tight_bbox.adjust_bbox
    assert not tight_bbox.renderer_is_required(func)  # fixed on import
    original = compat.get_original(tight_bbox.ORIGINAL_DEFAULTS)
    monkeypatch.setattr(func, '__defaults__', original)
    assert tight_bbox.renderer_is_required(func)
    assert tight_bbox.patch_adjust_bbox()
    assert func.__defaults__[0] is None
    assert func.__defaults__[1:] == tuple(original or ())[-1:]


def test_adjust_bbox_without_renderer_trims_a_figure():
    """What browse_dataset.make_grid does: trim a figure to its tight box
    without passing a renderer."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import transforms
    from matplotlib._tight_bbox import adjust_bbox
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=(2, 2))
    FigureCanvasAgg(figure)
    figure.add_subplot(1, 1, 1).imshow(np.zeros((4, 4)))
    points = figure.get_tightbbox(
        figure.canvas.get_renderer()).get_points()
    restore = adjust_bbox(figure, transforms.Bbox(points))
    assert callable(restore)



# ---------------------------------------------------------------------------
# 7. Quiet checkpoints
# ---------------------------------------------------------------------------
def test_unused_file_client_gate(monkeypatch):
    import mmengine.hooks.checkpoint_hook as hook_module
    import mmengine.runner.checkpoint as checkpoint_module

    from mmfer.utils.compat import unused_file_client as fix
    from mmfer.utils.compat.patching import is_patched
    for module in (checkpoint_module, hook_module):
        original = compat.get_original(f'{module.__name__}.FileClient')
        assert module.FileClient is not original  # fixed on import
        # no client without arguments, the real one with them
        assert module.FileClient.infer_client(None, '/tmp/x.pth') is None
        monkeypatch.setattr(module, 'FileClient', original)
    assert fix.builds_unused_client(checkpoint_module.save_checkpoint)
    assert fix.patch_unused_file_clients()
    assert is_patched(checkpoint_module.FileClient)
    assert is_patched(hook_module.FileClient)


def test_checkpoint_saving_logs_no_file_client_warning(tmp_path):
    code = (
        'import mmfer, torch\n'
        'from mmengine.runner.checkpoint import save_checkpoint\n'
        f"save_checkpoint(dict(w=torch.ones(1)), r'{tmp_path / 'c.pth'}')\n")
    proc = run(['-c', code])
    log = proc.stdout + proc.stderr
    assert 'FileClient' not in log and 'HardDiskBackend' not in log
    assert (tmp_path / 'c.pth').is_file()
