# Copyright (c) OpenMMLab. All rights reserved.
"""Every shipped config parses, follows the plugin contract and builds."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

import mmfer  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)
# The configs named after a paper's method (eac_*, gsmc_* and their short
# r18_rafdb_*, r18_ferplus*, r18_affectnet* names); the SynthFER demo
# recipes are mmfer's own.
PAPER_CONFIGS = [
    p for p in CONFIGS
    if osp.basename(osp.dirname(p)) in ('eac', 'gsmc')
    and not osp.basename(p).startswith('r18_synthfer')
]


def _build(cfg: Config):
    """Build a config's model without its pretrained weights.

    Returns:
        tuple: The model and its two-view network (the student of a
        mean-teacher system, else the model itself).
    """
    model = dict(cfg.model)
    if 'student' in model:  # a mean-teacher system (GSMC) nests its network
        model['student'] = dict(model['student'])
        net = model['student']
    else:
        net = model
    net['backbone'] = dict(net['backbone'], init_cfg=None)
    built = MODELS.build(model)
    return built, getattr(built, 'student', built)


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports == dict(
        imports=['mmfer'], allow_failed_imports=False)
    assert 'save_best' not in cfg.default_hooks.checkpoint
    assert cfg.train_dataloader.dataset.split == 'train'
    assert cfg.test_dataloader.dataset.split == 'test'
    for key in ('noise_file', 'noise_rate', 'noise_transition'):
        assert key not in cfg.test_dataloader.dataset
    model, net = _build(cfg)
    # the config's model, with as many outputs as the data has classes
    assert type(model).__name__ == cfg.model.type
    assert net.head.num_classes == cfg.data_preprocessor.num_classes


def test_paper_configs_are_found():
    names = [osp.basename(p) for p in PAPER_CONFIGS]
    assert len(names) == 25
    assert 'eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py' in names
    assert 'r18_affectnet7.py' in names and 'r18_ferplus.py' in names


@pytest.mark.parametrize('path', PAPER_CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in PAPER_CONFIGS])
def test_paper_configs_run_one_pass_per_view(path):
    """Paper-named configs take the official training step: one backbone
    pass per view, each with its own BatchNorm statistics."""
    _, net = _build(Config.fromfile(path))
    assert net.view_batching == 'separate'


def test_baseline_noise_levels():
    files = {
        n: Config.fromfile(
            osp.join(REPO, 'configs', 'baseline', f'r18_rafdb_noise{n}.py'))
        for n in (0, 10, 20, 30)
    }
    assert files[0].train_dataloader.dataset.get('noise_file') is None
    for n, i in ((10, 1), (20, 2), (30, 3)):
        assert files[n].train_dataloader.dataset.noise_file == \
            f'EmoLabel/noise0{i}.txt'


def test_missing_face_weights_say_how_to_get_them(tmp_path, monkeypatch):
    """A user without the converted MS-Celeb weights learns what to do."""
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'baseline', 'r18_rafdb_noise30.py'))
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    assert 'checkpoints/resnet18_msceleb_mmpretrain.pth' in str(err.value)
    assert 'face_weights_to_mmpretrain.py' in str(err.value)
