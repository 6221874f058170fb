# Copyright (c) OpenMMLab. All rights reserved.
"""Fast paths (bfloat16 autocast, channels-last, cuDNN benchmark,
torch.compile): each trains every mmfer system to the plain path's losses,
reaches the code it claims to, and survives checkpoints."""
import copy
import os.path as osp
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer  # noqa: F401  (registers the components)
from fer_replicas import make_rafdb
from mmfer.engine import ChannelsLastHook, FERAmpOptimWrapper
from mmfer.engine.hooks.channels_last_hook import convert_to_channels_last
from tool_runs import REPO, TRAIN, run, weights, write_config

FAST_BASE = osp.join(REPO, 'configs', '_base_', 'fast_training.py')
METHODS = ('baseline', 'eac', 'gsmc', 'resup', 'lanet')
# The networks each system runs besides the trained one; the fast path
# must reach them too.
EXTRA_NETWORKS = dict(gsmc='teacher.',
                      resup='networks.1.',
                      lanet='momentum_encoder.')
# LA-Net's label distributions need more samples than k=8 neighbours, and
# its queue (1344) whole batches.
BATCH = 12
SIZE = 32
NUM_LANDMARKS = 37
PLAIN = dict(optimizer=dict(type='Adam', lr=1e-3))
BF16 = dict(PLAIN, type='FERAmpOptimWrapper', dtype='bfloat16')
# bfloat16 keeps 8 mantissa bits (relative rounding 2**-9 ~ 2e-3 per
# operation); the losses of these systems move by 1e-4 to 1.2e-3 relative
# (measured here, LA-Net's after one Adam step the largest); 2e-2 leaves
# room for other CPUs' kernels.
BF16_RTOL = 2e-2
# channels-last and compile only reorder float32 sums.
LAYOUT_RTOL = 1e-5
# A network of the baseline recipe with one ResNet stage: torch.compile
# traces the same code in a third of the time.
ONE_STAGE = dict(num_stages=1,
                 out_indices=(0, ),
                 strides=(1, ),
                 dilations=(1, ))


def model_cfg(method: str) -> dict:
    """The model of a method's SynthFER recipe, preprocessor merged in as
    the runner does."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', method, 'r18_synthfer_noise30.py'))
    model = copy.deepcopy(cfg.model)
    model.setdefault('data_preprocessor', cfg.data_preprocessor)
    return model


def build(cfg: dict) -> nn.Module:
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model.train()


_MODELS = {}


def method_model(method: str) -> nn.Module:
    """A fresh copy of the method's (cached) freshly initialised model."""
    if method not in _MODELS:
        _MODELS[method] = build(model_cfg(method))
    return copy.deepcopy(_MODELS[method])


def make_batch(seed: int = 0) -> dict:
    """A collated uint8 batch with the annotations every system reads."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0,
                           256, (BATCH, 3, SIZE, SIZE),
                           generator=gen,
                           dtype=torch.uint8)
    samples = []
    for i in range(BATCH):
        sample = DataSample(metainfo=dict(sample_idx=i)).set_gt_label(i % 7)
        sample.landmarks = torch.rand(NUM_LANDMARKS, 2, generator=gen) * SIZE
        sample.has_landmarks = torch.tensor([True])
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)


def train_losses(model: nn.Module,
                 optim_wrapper,
                 steps: int = 2,
                 step_fn=None) -> list:
    """The loss of each of ``steps`` training steps on fixed batches (the
    second one after an optimiser step)."""
    if isinstance(optim_wrapper, dict):
        optim_wrapper = build_optim_wrapper(model, optim_wrapper)
    step_fn = step_fn or model.train_step
    return [
        step_fn(make_batch(i), optim_wrapper)['loss'].item()
        for i in range(steps)
    ]


@contextmanager
def conv_calls(model: nn.Module):
    """Record, per convolution that runs, its output dtype and whether its
    input was channels-last."""
    calls = {}

    def recorder(name):

        def hook(module, args, output):
            calls[name] = (output.dtype, args[0].is_contiguous(
                memory_format=torch.channels_last))

        return hook

    handles = [
        module.register_forward_hook(recorder(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def assert_extra_network_ran(method: str, calls: dict) -> None:
    prefix = EXTRA_NETWORKS.get(method)
    if prefix is not None:
        assert any(name.startswith(prefix) for name in calls), prefix


@pytest.fixture(scope='module')
def plain_losses():
    return {m: train_losses(method_model(m), PLAIN) for m in METHODS}


@pytest.mark.parametrize('method', METHODS)
def test_bf16_autocast_gives_the_plain_loss(method, plain_losses):
    model = method_model(method)
    with conv_calls(model) as calls:
        losses = train_losses(model, BF16)
    # every convolution of every network, extra forwards included, ran in
    # bfloat16
    assert calls and {dtype for dtype, _ in calls.values()} == {torch.bfloat16}
    assert_extra_network_ran(method, calls)
    np.testing.assert_allclose(losses, plain_losses[method], rtol=BF16_RTOL)


@pytest.mark.parametrize('method', METHODS)
def test_channels_last_gives_the_plain_loss(method, plain_losses):
    model = method_model(method)
    convert_to_channels_last(model)
    with conv_calls(model) as calls:
        losses = train_losses(model, PLAIN)
    assert calls and all(cl for _, cl in calls.values()), [
        name for name, (_, cl) in calls.items() if not cl
    ]
    assert_extra_network_ran(method, calls)
    assert all(
        m.weight.is_contiguous(memory_format=torch.channels_last)
        for m in model.modules() if isinstance(m, nn.Conv2d))
    np.testing.assert_allclose(losses, plain_losses[method], rtol=LAYOUT_RTOL)


def test_plain_path_keeps_the_default_layout():
    """The recorder tells the layouts apart: without the hook, stem inputs
    are not channels-last."""
    model = method_model('baseline')
    with conv_calls(model) as calls:
        train_losses(model, PLAIN, steps=1)
    assert not calls['backbone.conv1'][1]
    assert calls['backbone.conv1'][0] == torch.float32


def test_channels_last_hook_converts_once_before_each_loop():
    model = method_model('baseline')
    hook = ChannelsLastHook()
    runner = SimpleNamespace(model=model)
    hook.before_val(runner)
    handle = hook._handle
    hook.before_train(runner)
    hook.before_test(runner)
    assert hook._handle is handle
    assert model.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    seen = []
    model.backbone.conv1.register_forward_pre_hook(lambda m, args: seen.append(
        args[0].is_contiguous(memory_format=torch.channels_last)))
    model(torch.rand(2, 3, SIZE, SIZE), mode='tensor')
    assert seen == [True]  # converted once, not twice or not at all


def _one_stage(method: str) -> dict:
    """The method's model with a one-stage ResNet: every network of a
    system takes ``model.backbone`` and its head the backbone's width
    (LA-Net's two towers keep theirs)."""
    cfg = model_cfg(method)
    if method != 'lanet':
        cfg.backbone.update(ONE_STAGE)
    return cfg


@pytest.mark.parametrize('method', METHODS)
def test_compiled_train_step_gives_the_plain_loss(method):
    """What ``compile=dict(backend=...)`` makes of the runner's train_step.
    ``aot_eager`` traces forward and backward like inductor, without
    generating kernels. Two steps: the second reads what the first
    wrote in place (weights, the teacher, mixture tables, LA-Net's
    queues and history bank), and the state after them is the plain
    one's."""
    cfg = _one_stage(method)
    plain_model = build(cfg)
    plain = train_losses(plain_model, PLAIN, steps=2)
    model = build(cfg)
    compiled = torch.compile(model.train_step, backend='aot_eager')
    losses = train_losses(model, PLAIN, steps=2, step_fn=compiled)
    torch._dynamo.reset()
    np.testing.assert_allclose(losses, plain, rtol=LAYOUT_RTOL)
    # Buffers only: Adam's first updates are about lr * sign(grad), so a
    # weight whose gradient is near 0 may move by lr on either path; the
    # BatchNorm statistics of the second step, taken with those weights,
    # then differ by a few 1e-5 (measured: at most 4e-5 on LA-Net's last
    # stage, values ~0.2), hence atol 1e-4.
    expected = dict(plain_model.named_buffers())
    for name, value in model.named_buffers():
        torch.testing.assert_close(value, expected[name], rtol=1e-4,
                                   atol=1e-4, msg=name)


def test_bf16_optimizer_state_resumes_exactly(tmp_path):
    """A bfloat16 wrapper's checkpoint is a plain one: it resumes into a
    new bfloat16 wrapper (the next step equals the uninterrupted one) and
    into a plain OptimWrapper."""
    model = method_model('baseline')
    wrapper = build_optim_wrapper(model, BF16)
    assert isinstance(wrapper, FERAmpOptimWrapper)
    model.train_step(make_batch(0), wrapper)
    path = str(tmp_path / 'ckpt.pth')
    torch.save(
        dict(state_dict=model.state_dict(), optimizer=wrapper.state_dict()),
        path)
    ckpt = torch.load(path, weights_only=False)
    assert 'loss_scaler' not in ckpt['optimizer']

    resumed = method_model('baseline')
    resumed.load_state_dict(ckpt['state_dict'])
    resumed_wrapper = build_optim_wrapper(resumed, BF16)
    resumed_wrapper.load_state_dict(copy.deepcopy(ckpt['optimizer']))
    assert (model.train_step(make_batch(1),
                             wrapper)['loss'].item() == resumed.train_step(
                                 make_batch(1),
                                 resumed_wrapper)['loss'].item())
    for (name, a), b in zip(model.state_dict().items(),
                            resumed.state_dict().values()):
        assert torch.equal(a, b), name

    plain = build_optim_wrapper(method_model('baseline'), PLAIN)
    plain.load_state_dict(copy.deepcopy(ckpt['optimizer']))
    assert plain.optimizer.state_dict()['state'][0]['step'] == 1


def test_wrong_dtypes_say_what_to_use():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="needs a GPU.*dtype='bfloat16'"):
        FERAmpOptimWrapper(dtype='float16',
                           optimizer=torch.optim.SGD(model.parameters(),
                                                     lr=0.1))
    with pytest.raises(ValueError, match='must be one of'):
        FERAmpOptimWrapper(dtype='float32',
                           optimizer=torch.optim.SGD(model.parameters(),
                                                     lr=0.1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_float16_on_cuda_scales_and_checkpoints_the_scaler():
    model = method_model('baseline').cuda()
    wrapper = build_optim_wrapper(
        model, dict(PLAIN, type='FERAmpOptimWrapper', dtype='float16'))
    model.train_step(make_batch(0), wrapper)
    assert wrapper.state_dict()['loss_scaler']['scale'] > 1


@pytest.fixture
def cudnn_flags():
    """Restore what a runner's env_cfg and randomness set globally."""
    saved = (torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled())
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = (
        saved[:2])
    torch.use_deterministic_algorithms(saved[2])


def write_fast_config(tmp_path, data_root: str, **kwargs) -> str:
    """A tiny baseline run with the fast-training switches of
    ``configs/_base_/fast_training.py`` turned on as its comment says."""
    base = write_config(tmp_path, data_root, name='plain.py', **kwargs)
    path = tmp_path / 'fast.py'
    path.write_text(f'_base_ = [{base!r}, {FAST_BASE!r}]\n'
                    'optim_wrapper = {{_base_.fast_training.optim_wrapper}}\n'
                    'default_hooks = {{_base_.fast_training.default_hooks}}\n'
                    'env_cfg = {{_base_.fast_training.env_cfg}}\n')
    return str(path)


@pytest.mark.parametrize('deterministic', [False, True])
def test_cudnn_benchmark_switch_reaches_torch(tmp_path, cudnn_flags,
                                              deterministic):
    cfg = Config.fromfile(write_fast_config(tmp_path, str(tmp_path)))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.randomness.deterministic = deterministic
    torch.backends.cudnn.benchmark = False
    Runner.from_cfg(cfg)
    # mmengine's deterministic mode switches the benchmark off again
    assert torch.backends.cudnn.benchmark is not deterministic


def test_fast_base_merges_into_the_method_settings(tmp_path):
    cfg = Config.fromfile(write_fast_config(tmp_path, str(tmp_path)))
    plain = Config.fromfile(str(tmp_path / 'plain.py'))
    assert cfg.optim_wrapper == dict(plain.optim_wrapper,
                                     type='FERAmpOptimWrapper',
                                     dtype='bfloat16')
    assert cfg.default_hooks == dict(
        plain.default_hooks, channels_last=dict(type='ChannelsLastHook'))
    assert cfg.env_cfg == dict(plain.env_cfg, cudnn_benchmark=True)
    assert cfg.custom_hooks == plain.custom_hooks
    assert 'compile' not in cfg


def test_train_tool_runs_the_fast_paths_and_resumes(tmp_path):
    """tools/train.py, 2 iterations a epoch, bfloat16 + channels-last, then
    ``--resume`` for a second epoch."""
    root = make_rafdb(str(tmp_path / 'rafdb'), num_train=16, num_test=8)
    cfg = write_fast_config(tmp_path, root, epochs=1)
    work = str(tmp_path / 'work')
    out = run([TRAIN, cfg, '--work-dir', work])
    assert 'FERAmpOptimWrapper' in out.stdout + out.stderr
    ckpt = osp.join(work, 'epoch_1.pth')
    stem = weights(ckpt)['backbone.conv1.weight']
    # ChannelsLastHook ran: the saved kernels are NHWC
    assert stem.is_contiguous(memory_format=torch.channels_last)
    assert not stem.is_contiguous()

    run([
        TRAIN, cfg, '--work-dir', work, '--resume', '--cfg-options',
        'train_cfg.max_epochs=2'
    ])
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))


def test_train_tool_amp_flag_uses_bf16_autocast_on_cpu(tmp_path):
    """``tools/train.py --amp`` builds FERAmpOptimWrapper(bfloat16), which
    runs on a CPU (mmengine's AmpOptimWrapper refuses to)."""
    root = make_rafdb(str(tmp_path / 'rafdb'), num_train=8, num_test=4)
    cfg = write_config(tmp_path, root, epochs=1)
    out = run([TRAIN, cfg, '--work-dir', str(tmp_path / 'work'), '--amp'])
    log = out.stdout + out.stderr
    assert "type='FERAmpOptimWrapper'" in log and "dtype='bfloat16'" in log
    assert osp.isfile(osp.join(str(tmp_path / 'work'), 'epoch_1.pth'))
