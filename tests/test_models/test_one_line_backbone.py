# Copyright (c) OpenMMLab. All rights reserved.
"""One line swaps the backbone of every method.

For each method's SynthFER recipe and five mmpretrain backbones, a child
config whose only content besides ``_base_`` is
``model = dict(backbone=dict(_delete_=True, type=...))`` builds, trains one
step and predicts: no ``in_channels``, no per-network or per-tower edits.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METHODS = {
    'baseline': 'baseline/r18_synthfer_noise30.py',
    'eac': 'eac/r18_synthfer_noise30.py',
    'gsmc': 'gsmc/r18_synthfer_noise30.py',
    'resup': 'resup/r18_synthfer_noise30.py',
    'lanet': 'lanet/r18_synthfer_noise30.py',
    'resup-eac': 'resup/resup-eac_r18_synthfer_noise30.py',
    'lanet-eac': 'lanet/lanet-eac_r18_synthfer_noise30.py',
}
# The smallest variants, from random weights: the one line of the README.
BACKBONES = {
    'convnext-atto': dict(type='ConvNeXt', arch='atto'),
    'mobilenetv3-small': dict(type='MobileNetV3', arch='small'),
    'efficientnet-b0': dict(type='EfficientNet', arch='b0'),
    'deit-tiny': dict(
        type='VisionTransformer', arch='deit-tiny', out_type='featmap'),
    'resnet50': dict(type='ResNet', depth=50),
}
SIZE = 32
BATCH = 2
# LA-Net estimates label distributions from each sample's k = 8 nearest
# neighbours in the batch, and its queue (1,344 keys) takes whole batches.
LANET_BATCH = 12


def one_line_config(tmp_path, method: str, backbone: str) -> Config:
    """Write and load the child config of ``method`` with ``backbone``."""
    swap = dict(_delete_=True, **BACKBONES[backbone])
    path = tmp_path / f'{method}_{backbone}.py'
    path.write_text(f"_base_ = ['{REPO}/configs/{METHODS[method]}']\n"
                    f'model = dict(backbone={swap!r})\n')
    return Config.fromfile(str(path))


def make_batch(num: int, num_landmarks: int = 0, seed: int = 0) -> dict:
    """A collated batch of ``num`` uint8 images at ``SIZE`` px with labels,
    sample indices and, for LA-Net, landmarks.

    Built directly rather than by the configs' pipelines (which the swap
    leaves unchanged and which resize to 64 px): at half SynthFER's size
    the 35 cases stay fast. Two-view heads (EAC) mirror the single view.
    """
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num):
        inputs.append(
            torch.randint(0, 256, (3, SIZE, SIZE), generator=gen).byte())
        sample = DataSample(metainfo=dict(sample_idx=i)).set_gt_label(i % 7)
        if num_landmarks:
            sample.landmarks = torch.rand(num_landmarks, 2, generator=gen) \
                * SIZE
            sample.has_landmarks = torch.tensor([True])
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def backbone_kinds(model: torch.nn.Module) -> set:
    """The (class, depth) of every backbone in the model: each network,
    tower, teacher or momentum copy holds one."""
    return {(type(m).__name__, getattr(m, 'depth', None))
            for m in model.modules() if isinstance(m, BaseBackbone)}


def trained_backbones(model: torch.nn.Module) -> list:
    """The backbones the optimiser trains (not a teacher or momentum
    copy)."""
    return [
        m for m in model.modules() if isinstance(m, BaseBackbone)
        and any(p.requires_grad for p in m.parameters())
    ]


@pytest.mark.parametrize('backbone', list(BACKBONES))
@pytest.mark.parametrize('method', list(METHODS))
def test_one_line_swaps_the_backbone(tmp_path, method, backbone):
    init_default_scope('mmpretrain')
    cfg = one_line_config(tmp_path, method, backbone)
    model_cfg = cfg.model.to_dict()
    # as the runner does: the config's preprocessor unless the model has one
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    new = BACKBONES[backbone]
    assert backbone_kinds(model) == {(new['type'], new.get('depth'))}

    lanet = method.startswith('lanet')
    num = LANET_BATCH if lanet else BATCH
    num_landmarks = cfg.model.landmark_neck.num_landmarks if lanet else 0
    trained = trained_backbones(model)
    before = [[p.detach().clone() for p in m.parameters()] for m in trained]
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    log_vars = model.train_step(make_batch(num, num_landmarks), optim)
    assert log_vars and all(
        torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
    # the step reached every network's (and tower's) new backbone
    for module, params in zip(trained, before):
        assert any(not torch.equal(p, q)
                   for p, q in zip(module.parameters(), params))

    model.eval()
    preds = model.val_step(make_batch(num, seed=1))
    assert len(preds) == num
    for pred in preds:
        assert pred.pred_score.shape == (7, )
        assert torch.isfinite(pred.pred_score).all()
