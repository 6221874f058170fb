# Copyright (c) OpenMMLab. All rights reserved.
"""Every shipped config parses, follows the plugin contract and builds."""
import glob
import os.path as osp

import inspect

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmpretrain.datasets.transforms import RandomCrop
from mmpretrain.registry import HOOKS, MODELS, TRANSFORMS

import mmfer  # noqa: F401
from mmfer.models import FERClassifier

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)
# The configs named after a paper's method (eac_*, gsmc_*, resup_*,
# resup-eac_* and their short r18_rafdb_*, r18_ferplus*, r18_affectnet*
# names); the SynthFER demo recipes (*synthfer*) are mmfer's own.
PAPER_CONFIGS = [
    p for p in CONFIGS
    if osp.basename(osp.dirname(p)) in ('eac', 'gsmc', 'resup')
    and 'synthfer' not in osp.basename(p)
]


def _without_weights(net: dict) -> dict:
    """A copy of a classifier config whose backbone starts from scratch."""
    return dict(net, backbone=dict(net['backbone'], init_cfg=None))


def _build(cfg: Config):
    """Build a config's model without its pretrained weights.

    Returns:
        tuple: The model and its checked network: the student of a
        mean-teacher system, network 0 of a two-network system (ReSup),
        else the model itself.
    """
    model = dict(cfg.model)
    if 'networks' in model:  # a two-network system lists its members
        model['networks'] = [_without_weights(n) for n in model['networks']]
        built = MODELS.build(model)
        return built, built.networks[0]
    if 'student' in model:  # a mean-teacher system (GSMC) nests its network
        model['student'] = _without_weights(model['student'])
    else:
        model = _without_weights(model)
    built = MODELS.build(model)
    return built, getattr(built, 'student', built)


def _members(model: nn.Module):
    """The classifiers a built model trains: both networks of a two-network
    system, the student of a mean-teacher system, else the model."""
    if hasattr(model, 'networks'):
        return list(model.networks)
    return [getattr(model, 'student', model)]


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
    for member in _members(model):
        assert member.head.num_classes == cfg.data_preprocessor.num_classes


def test_paper_configs_are_found():
    names = [osp.basename(p) for p in PAPER_CONFIGS]
    # EAC 13, GSMC 12, ReSup 15 (8 full names, 7 short ones)
    assert len(names) == 40
    assert 'eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py' in names
    assert 'r18_affectnet7.py' in names and 'r18_ferplus.py' in names
    assert 'resup-eac_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py' \
        in names
    assert 'r18_rafdb_resup-noise30.py' in names
    assert 'resup-eac_r18_synthfer_noise30.py' not in names


@pytest.mark.parametrize('path', PAPER_CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in PAPER_CONFIGS])
def test_paper_configs_run_one_pass_per_view(path):
    """Paper-named configs take the official training step: one backbone
    pass per view, each with its own BatchNorm statistics."""
    model, _ = _build(Config.fromfile(path))
    for net in _members(model):
        if isinstance(net, FERClassifier):
            assert net.view_batching == 'separate'
        else:  # ReSup's plain classifiers see one view: one pass per step
            assert type(net).__name__ == 'ImageClassifier'


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


# ReSup ----------------------------------------------------------------------

RESUP = osp.join(REPO, 'configs', 'resup')
RESUP_LONG = 'resup_resnet18-msceleb-pre_1xb96-30e'
# The official recipe (the two-network ResNet-18 model, ReSup's transforms)
# on every dataset, by full and short name; resup-eac_* changes the members.
RESUP_OFFICIAL = [
    p for p in PAPER_CONFIGS if osp.dirname(p) == RESUP
    and not osp.basename(p).startswith('resup-eac')
]
RESUP_SCHEDULED = [p for p in PAPER_CONFIGS if osp.dirname(p) == RESUP]
# The official code's constants (main.py, model.py, utils.py).
RESUP_MODEL_ARGS = dict(
    agreement_weight=5.0,
    similarity_clamp=(1e-3, 1 - 1e-3),
    weight_clamp=(1e-4, 1 - 1e-4),
    lookup_bins=100,
    predict_with='net0',
    check_pretrained=True)
RESUP_HOOK = dict(
    type='ReSupHook',
    mixture='beta',
    em_iters=10,
    warmup_epochs=1,
    similarity_source='extra_pass',
    noise_threshold=0.5,
    scores_file='noise_scores.csv')
RESUP_CHECKPOINTS = ('checkpoints/resnet18_scn_mmpretrain.pth',
                     'checkpoints/resnet18_imagenet_mmpretrain.pth')


def _resup(name: str) -> Config:
    return Config.fromfile(osp.join(RESUP, name))


def _relids(paths):
    return [osp.relpath(p, REPO) for p in paths]


def test_resup_configs_are_found():
    assert len(RESUP_OFFICIAL) == 14 and len(RESUP_SCHEDULED) == 15


@pytest.mark.parametrize('path', RESUP_SCHEDULED, ids=_relids(RESUP_SCHEDULED))
def test_resup_schedule_is_the_official_one(path):
    """One Adam over both networks (lr 2e-4, default betas, no weight
    decay), lr x0.1 after epochs 10 and 20, 30 epochs, batch 96 (test 32),
    and the hook and system with the official constants."""
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.to_dict() == dict(
        optimizer=dict(type='Adam', lr=2e-4, weight_decay=0))
    assert cfg.param_scheduler.to_dict() == dict(
        type='MultiStepLR', by_epoch=True, milestones=[10, 20], gamma=0.1)
    assert cfg.train_cfg.to_dict() == dict(
        by_epoch=True, max_epochs=30, val_interval=1)
    assert cfg.train_dataloader.batch_size == 96
    assert cfg.val_dataloader.batch_size == 32
    assert cfg.test_dataloader.batch_size == 32
    assert cfg.auto_scale_lr.base_batch_size == 96
    assert [h.to_dict() for h in cfg.custom_hooks] == [
        dict(type='FERReportHook'),
        dict(type='EpochSeedHook'), RESUP_HOOK
    ]
    model = cfg.model.to_dict()
    assert model['type'] == 'CoTeachingClassifier'
    assert {k: model[k] for k in RESUP_MODEL_ARGS} == RESUP_MODEL_ARGS
    # network 0 from MS-Celeb-1M (SCN's file), network 1 from ImageNet
    assert tuple(n['backbone']['init_cfg']['checkpoint']
                 for n in model['networks']) == RESUP_CHECKPOINTS


@pytest.mark.parametrize('path', RESUP_OFFICIAL, ids=_relids(RESUP_OFFICIAL))
def test_resup_official_members_and_transforms(path):
    """Two ResNet-18 + GAP + Linear(512, 7) with PyTorch's default init;
    ReSup's train and test transforms at 224 px."""
    cfg = Config.fromfile(path)
    for net in cfg.model.networks:
        net = net.to_dict()
        assert net['type'] == 'ImageClassifier'
        assert {k: net['backbone'][k]
                for k in ('type', 'depth', 'out_indices', 'style')} == \
            dict(type='ResNet', depth=18, out_indices=(3, ), style='pytorch')
        assert net['neck'] == dict(type='GlobalAveragePooling')
        assert net['head'] == dict(
            type='LinearClsHead',
            num_classes=7,
            in_channels=512,
            init_cfg=None,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))
    train = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in train] == [
        'LoadFERImage', 'Resize', 'RandomFlip', 'mmcv.RandomApply',
        'RandomErasing', 'PackFERInputs'
    ]
    assert train[1].scale == (224, 224)
    assert (train[2].prob, train[2].direction) == (0.5, 'horizontal')
    assert train[3].prob == 0.2
    assert [t.to_dict() for t in train[3].transforms] == [
        dict(
            type='RandomCrop',
            crop_size=224,
            padding=32,
            pad_val=0,
            padding_mode='constant')
    ]
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert [t.to_dict() for t in loader.dataset.pipeline] == [
            dict(type='LoadFERImage'),
            dict(type='Resize', scale=(224, 224)),
            dict(type='PackFERInputs')
        ]


def test_resup_random_erasing_is_eacs_and_zero_after_normalisation():
    """torchvision RandomErasing(scale=(0.02, 0.25)) with value 0 after
    normalisation: the mean colour in BGR before it (images are BGR until
    the data preprocessor), shared with EAC, not copied."""
    cfg = _resup('r18_rafdb_noise30.py')
    erasing = cfg.train_dataloader.dataset.pipeline[4].to_dict()
    assert erasing == cfg.eac_random_erasing.to_dict()
    torchvision = dict(
        erase_prob=0.5,
        min_area_ratio=0.02,
        max_area_ratio=0.25,
        aspect_range=(0.3, 3.3),
        mode='const')
    assert {k: erasing[k] for k in torchvision} == torchvision
    pre = cfg.data_preprocessor
    assert pre.to_rgb
    rgb_fill = np.array(erasing['fill_color'][::-1])
    normalised = (rgb_fill - np.array(pre.mean)) / np.array(pre.std)
    np.testing.assert_allclose(normalised, 0.0, atol=1e-12)


def test_resup_random_crop_pads_with_black(monkeypatch):
    """The official crop runs before ToTensor/Normalize: its zero padding
    is a black border. With the crop applied and its window at the top-left
    corner of the padded image, the first 32 rows and columns are 0."""
    init_default_scope('mmpretrain')
    cfg = _resup('r18_rafdb_noise30.py')
    apply_cfg = cfg.train_dataloader.dataset.pipeline[3].to_dict()
    apply_cfg['prob'] = 1.0
    crop = TRANSFORMS.build(apply_cfg)
    (inner, ) = crop.transforms.transforms
    assert type(inner) is RandomCrop  # mmpretrain's, which pads
    monkeypatch.setattr(inner, 'rand_crop_params', lambda img:
                        (0, 0, 224, 224))
    img = np.full((224, 224, 3), 200, np.uint8)
    out = crop(dict(img=img, img_shape=(224, 224)))['img']
    expected = np.zeros((224, 224, 3), np.uint8)
    expected[32:, 32:] = 200
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('name,views', [
    ('r18_rafdb_noise30.py', 1),
    ('resup-eac_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py', 2),
])
def test_resup_train_pipelines_run(name, views):
    """The train pipelines build and run on a tiny image (all random
    transforms applied): 224 px, one view (ReSup) or EAC's two views."""
    init_default_scope('mmpretrain')
    cfg = _resup(name)

    def always(item):
        if isinstance(item, list):
            return [always(i) for i in item]
        if not isinstance(item, dict):
            return item
        item = {k: always(v) for k, v in item.items()}
        for key in ('prob', 'erase_prob'):
            if key in item and item.get('type') != 'RandomFlip':
                item[key] = 1.0
        return item

    steps = always(cfg.train_dataloader.dataset.to_dict()['pipeline'])
    assert steps[0] == dict(type='LoadFERImage')
    pipeline = Compose(steps[1:])
    rng = np.random.default_rng(0)
    for seed in range(3):
        np.random.seed(seed)
        img = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
        packed = pipeline(
            dict(img=img, img_shape=(10, 12), ori_shape=(10, 12),
                 gt_label=3))
        inputs = packed['inputs']
        inputs = [inputs] if torch.is_tensor(inputs) else inputs
        assert len(inputs) == views
        assert all(v.shape == (3, 224, 224) for v in inputs)
        assert packed['data_samples'].gt_label.tolist() == [3]


def test_resup_noise_files():
    """EAC's noise files for the noise{10,20,30} configs (comparable with
    the other methods), ReSup's own 30% file for resup-noise30."""
    expected = {
        'r18_rafdb_noise0.py': None,
        'r18_rafdb_noise10.py': 'EmoLabel/noise01.txt',
        'r18_rafdb_noise20.py': 'EmoLabel/noise02.txt',
        'r18_rafdb_noise30.py': 'EmoLabel/noise03.txt',
        'r18_rafdb_resup-noise30.py': 'EmoLabel/0.3noise_train1.txt',
        'resup-eac_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py':
        'EmoLabel/noise03.txt',
    }
    for name, noise_file in expected.items():
        dataset = _resup(name).train_dataloader.dataset
        assert dataset.get('noise_file') == noise_file, name
        assert 'noise_rate' not in dataset


def test_resup_short_names():
    pairs = {
        'r18_rafdb_noise0.py': f'{RESUP_LONG}_rafdb.py',
        'r18_rafdb_noise10.py': f'{RESUP_LONG}_rafdb-noise10.py',
        'r18_rafdb_noise20.py': f'{RESUP_LONG}_rafdb-noise20.py',
        'r18_rafdb_noise30.py': f'{RESUP_LONG}_rafdb-noise30.py',
        'r18_rafdb_resup-noise30.py': f'{RESUP_LONG}_rafdb-resup-noise30.py',
        'r18_ferplus.py': f'{RESUP_LONG}_ferplus.py',
        'r18_affectnet7.py': f'{RESUP_LONG}_affectnet7.py',
    }
    for short, full in pairs.items():
        assert _resup(short).to_dict() == _resup(full).to_dict(), short


def test_resup_eac_members():
    """ReSup x EAC: two EAC classifiers (EACHead, no neck, one pass per
    view, EAC's attention weight 5), EAC's noisy-label views."""
    cfg = _resup('resup-eac_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py')
    eac = Config.fromfile(
        osp.join(REPO, 'configs', 'eac', 'r18_rafdb_noise30.py'))
    for net in cfg.model.networks:
        net = net.to_dict()
        assert net['type'] == 'FERClassifier'
        assert net['view_batching'] == 'separate' and net['neck'] is None
        assert net['head'] == eac.model.head.to_dict()
    assert cfg.train_dataloader.dataset.pipeline == \
        eac.train_dataloader.dataset.pipeline


def test_resup_synthfer_recipes_change_only_the_method():
    """The SynthFER recipes keep the baseline demo's data, noise, optimiser,
    schedule, epochs and batch; their members are two copies of the
    baseline's (ReSup) or of EAC's SynthFER network (ReSup x EAC)."""
    base = Config.fromfile(
        osp.join(REPO, 'configs', 'baseline', 'r18_synthfer_noise30.py'))
    eac = Config.fromfile(
        osp.join(REPO, 'configs', 'eac', 'r18_synthfer_noise30.py'))
    for name, ref, warmup in (('r18_synthfer_noise30.py', base, 3),
                              ('resup-eac_r18_synthfer_noise30.py', eac, 6)):
        cfg = _resup(name)
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                    'optim_wrapper', 'param_scheduler', 'train_cfg',
                    'data_preprocessor'):
            assert cfg[key] == ref[key], (name, key)
        model = cfg.model.to_dict()
        assert model == dict(
            type='CoTeachingClassifier',
            networks=[ref.model.to_dict(),
                      ref.model.to_dict()])
        # from scratch, a longer warm-up than ReSup's 1 epoch (each
        # config's comment says why); everything else at ReSup's defaults
        assert [h.to_dict() for h in cfg.custom_hooks][-1] == dict(
            type='ReSupHook', warmup_epochs=warmup)


def test_resup_linear_heads_keep_pytorch_default_init():
    """init_cfg=None: the head's FC keeps nn.Linear's initialisation, as
    the official nn.Linear(512, 7) (mmpretrain's default would redraw it
    from N(0, 0.01))."""
    head_cfg = _resup('r18_rafdb_noise30.py').model.networks[0].head
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    torch.manual_seed(0)
    reference = nn.Linear(512, 7)
    assert torch.equal(head.fc.weight, reference.weight)
    assert torch.equal(head.fc.bias, reference.bias)


def test_resup_checkpoints_are_documented():
    with open(osp.join(REPO, 'docs', 'pretrained.md')) as f:
        doc = f.read()
    for checkpoint in RESUP_CHECKPOINTS:
        assert checkpoint in doc
    assert 'resnet18-f37072fd.pth' in doc


def test_resup_configs_state_the_class_defaults():
    """The configs spell out ReSup's constants, and they are the defaults
    of CoTeachingClassifier and ReSupHook (both say they default to the
    official values)."""
    for registry, name, args in ((MODELS, 'CoTeachingClassifier',
                                  RESUP_MODEL_ARGS),
                                 (HOOKS, 'ReSupHook', RESUP_HOOK)):
        cls = registry.get(name)
        assert cls is not None, f'{name} is not registered'
        params = inspect.signature(cls.__init__).parameters
        for key, value in args.items():
            if key != 'type':
                assert params[key].default == value, (name, key)


def test_resup_networks_load_their_own_checkpoints(tmp_path, monkeypatch):
    """Network 0 starts from the converted MS-Celeb file, network 1 from the
    converted ImageNet file (two distinguishable stand-in files here)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'checkpoints').mkdir()
    sources = []
    for seed, checkpoint in enumerate(RESUP_CHECKPOINTS):
        torch.manual_seed(seed)
        state = MODELS.build(dict(type='ResNet', depth=18)).state_dict()
        torch.save({'state_dict': state}, checkpoint)
        sources.append(state)
    model = MODELS.build(_resup('r18_rafdb_noise30.py').model)
    model.init_weights()
    for net, state in zip(model.networks, sources):
        loaded = net.backbone.state_dict()
        assert loaded.keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(loaded[key], value), key
