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
# resup-eac_*, lanet_*, lanet-eac_* and their short r18_rafdb_*,
# r18_ferplus*, r18_affectnet* names); the SynthFER demo recipes
# (*synthfer*) are mmfer's own.
PAPER_CONFIGS = [
    p for p in CONFIGS
    if osp.basename(osp.dirname(p)) in ('eac', 'gsmc', 'resup', 'lanet')
    and 'synthfer' not in osp.basename(p)
]


def _without_weights(cfg):
    """A copy of a model config in which no part loads pretrained weights
    (the system's backbone and any network's own backbone start from
    scratch)."""
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_without_weights(item) for item in cfg)
    if not isinstance(cfg, dict):
        return cfg
    return {
        key: None if key == 'init_cfg' and isinstance(value, dict)
        and value.get('type') == 'Pretrained' else _without_weights(value)
        for key, value in cfg.items()
    }


def _build(cfg: Config):
    """Build a config's model without its pretrained weights.

    Returns:
        tuple: The model and its checked network: the student of a
        mean-teacher system, network 0 of a two-network system (ReSup),
        else the model itself.
    """
    built = MODELS.build(_without_weights(cfg.model.to_dict()))
    if hasattr(built, 'networks'):
        return built, built.networks[0]
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
    # a teacher (GSMC's mean teacher, LA-Net's momentum encoder) is updated
    # by MeanTeacherHook, exactly once per optimiser step
    hooks = [h['type'] for h in cfg.custom_hooks]
    expected = int(hasattr(model, 'update_teacher'))
    assert hooks.count('MeanTeacherHook') == expected, hooks


def test_paper_configs_are_found():
    names = [osp.basename(p) for p in PAPER_CONFIGS]
    # EAC 13, GSMC 12, ReSup 15 (8 full names, 7 short ones), LA-Net 12
    # (7 full names, 5 short ones)
    assert len(names) == 52
    assert 'eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py' in names
    assert 'r18_affectnet7.py' in names and 'r18_ferplus.py' in names
    assert 'resup-eac_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py' \
        in names
    assert 'r18_rafdb_resup-noise30.py' in names
    assert 'resup-eac_r18_synthfer_noise30.py' not in names
    assert 'lanet-eac_resnet18-msceleb-pre_2xb64-80e_rafdb-noise30.py' \
        in names
    assert 'lanet-eac_r18_synthfer_noise30.py' not in names


@pytest.mark.parametrize('path', PAPER_CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in PAPER_CONFIGS])
def test_paper_configs_run_one_pass_per_view(path):
    """Paper-named configs take the official training step: one backbone
    pass per view, each with its own BatchNorm statistics."""
    model, _ = _build(Config.fromfile(path))
    for net in _members(model):
        if isinstance(net, FERClassifier):
            assert net.view_batching == 'separate'
        else:
            # ReSup's plain classifiers see one view: one pass per step;
            # LA-Net runs the mirror of a two-view head (EAC) through the
            # expression tower in a pass of its own
            assert type(net).__name__ in ('ImageClassifier',
                                          'LANetClassifier')


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
    similarity_bounds=(1e-3, 1 - 1e-3),
    similarity_rule='official',
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
    model = cfg.model.to_dict()
    assert {k: model['backbone'][k]
            for k in ('type', 'depth', 'out_indices', 'style')} == \
        dict(type='ResNet', depth=18, out_indices=(3, ), style='pytorch')
    for net in model['networks']:
        # the system's backbone, with the network's own weights
        assert 'type' not in net and set(net['backbone']) == {'init_cfg'}
        assert net['neck'] == dict(type='GlobalAveragePooling')
        assert net['head'] == dict(
            type='LinearClsHead',
            num_classes=7,
            init_cfg=None,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))
    built, _ = _build(cfg)
    for net in built.networks:
        assert type(net).__name__ == 'FERClassifier'
        assert net.head.fc.weight.shape == (7, 512)
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
        assert net.get('type', 'FERClassifier') == 'FERClassifier'
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
        # both networks on the reference's backbone
        network = ref.model.to_dict()
        backbone = network.pop('backbone')
        assert network.pop('type') == 'FERClassifier'
        model = cfg.model.to_dict()
        assert model == dict(
            type='CoTeachingClassifier',
            backbone=backbone,
            networks=[network, network])
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
    # the width the network measures on its ResNet-18
    head = MODELS.build(dict(head_cfg, in_channels=512))
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


# LA-Net ---------------------------------------------------------------------

LANET = osp.join(REPO, 'configs', 'lanet')
LANET_LONG = 'lanet_resnet18-msceleb-pre_2xb64-80e'
LANET_PAPER = [p for p in PAPER_CONFIGS if osp.dirname(p) == LANET]
# The official recipe with LinearClsHead (lanet-eac_* swaps the head)
LANET_OFFICIAL = [
    p for p in LANET_PAPER if not osp.basename(p).startswith('lanet-eac')
]
# The official constants (train.py, loss.py, utils.py), by model key.
LANET_MODEL_ARGS = dict(
    history_momentum=0.9,
    momentum=0.999,
    queue_size=8192,
    confidence=0.7,
    ambiguous_ids='official',
    loss_weights=dict(landmark=1.0, kl=1.0, contrastive=0.1))
LANET_COMPONENTS = dict(
    landmark_loss=dict(
        type='AdaptiveWingLoss', alpha=2.1, omega=14.0, epsilon=1.0,
        theta=0.5),
    label_distribution=dict(type='LabelDistributionEstimator', k=8),
    contrastive_loss=dict(
        type='ExpressionLandmarkContrastiveLoss', temperature=0.1))
LANET_HEATMAP = dict(stride=4, sigma=1.5, weight=10.0, threshold=0.2)
# transforms.Normalize of the official dataloader.py, in [0, 1] units
LANET_MEAN = (0.5412, 0.4324, 0.3795)
LANET_STD = (0.2485, 0.2182, 0.2066)
# (12271 // 128) iterations of the global batch 128 per epoch
LANET_ITERS_PER_EPOCH = 95


def _lanet(name: str) -> Config:
    return Config.fromfile(osp.join(LANET, name))


def _heatmap_landmarks(cfg: Config) -> int:
    (targets, ) = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t.type == 'LandmarkTargets'
    ]
    return targets.num_landmarks


def test_lanet_configs_are_found():
    assert len(LANET_PAPER) == 12 and len(LANET_OFFICIAL) == 11


@pytest.mark.parametrize('path', LANET_PAPER, ids=_relids(LANET_PAPER))
def test_lanet_schedule_and_system_are_the_official_ones(path):
    """Adam (lr 1e-3, default betas, no weight decay), a linear decay to 0
    over the 80 epochs stepped per iteration, batch 64 per GPU without the
    last partial batch, LA-Net's progressive sampler over 80 epochs,
    SyncBN, and the model with the official constants."""
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.to_dict() == dict(
        optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
    assert cfg.param_scheduler.to_dict() == dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=0,
        end=80,
        convert_to_iter_based=True)
    assert cfg.train_cfg.to_dict() == dict(
        by_epoch=True, max_epochs=80, val_interval=1)
    loader = cfg.train_dataloader
    assert loader.batch_size == 64 and loader.drop_last is True
    assert loader.sampler.to_dict() == dict(
        type='ProgressiveClassBalancedSampler', max_epoch=80)
    assert cfg.auto_scale_lr.base_batch_size == 128
    assert cfg.sync_bn == 'torch'
    # the queue takes whole global batches of 2 GPUs x 64
    assert cfg.model.queue_size % (2 * loader.batch_size) == 0
    model = cfg.model.to_dict()
    assert model['type'] == 'LANetClassifier'
    assert {k: model[k] for k in LANET_MODEL_ARGS} == LANET_MODEL_ARGS
    assert {k: model[k] for k in LANET_COMPONENTS} == LANET_COMPONENTS
    # one ResNet-18 builds both towers, which share the stem and layer1
    backbone = model['backbone']
    assert model['towers'] == dict(num_shared_stages=1)
    assert {k: backbone[k]
            for k in ('type', 'depth', 'out_indices', 'style')} == dict(
                type='ResNet', depth=18, out_indices=(0, 1, 2, 3),
                style='pytorch')
    assert backbone['init_cfg'] == dict(
        type='Pretrained',
        checkpoint='checkpoints/resnet18_msceleb_mmpretrain.pth')
    assert model['landmark_neck'] == dict(
        type='LandmarkFPN',
        out_channels=64,
        num_landmarks=_heatmap_landmarks(cfg))
    pre = model['data_preprocessor']
    assert pre['to_rgb'] and pre['num_classes'] == 7
    np.testing.assert_allclose(pre['mean'], np.array(LANET_MEAN) * 255)
    np.testing.assert_allclose(pre['std'], np.array(LANET_STD) * 255)


def test_lanet_lr_decays_to_zero_every_iteration():
    """The official LinearLR(1 -> 0, total_iters=95 * 80) stepped per
    iteration: lr_i = 1e-3 (1 - i / 7600). mmengine's epoch-to-iteration
    conversion spans end - begin - 1 = 7599 steps, so its lr reaches 0 one
    iteration earlier; every lr lies within one step's decrement (1.3e-7)
    of the official one."""
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = _lanet('r18_rafdb_noise30.py')
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    scheduler = PARAM_SCHEDULERS.build(
        cfg.param_scheduler.to_dict(),
        default_args=dict(
            optimizer=optimizer, epoch_length=LANET_ITERS_PER_EPOCH))
    assert not scheduler.by_epoch
    total = LANET_ITERS_PER_EPOCH * 80
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    official = 1e-3 * (1 - np.arange(total) / total)
    assert lrs[0] == 1e-3
    np.testing.assert_allclose(lrs, official, rtol=0, atol=1e-3 / total)
    assert lrs[total // 2] < 0.5e-3 + 1e-3 / total
    assert abs(lrs[-1]) < 1e-12


@pytest.mark.parametrize('path', LANET_PAPER, ids=_relids(LANET_PAPER))
def test_lanet_transforms_are_the_official_ones(path):
    """Bicubic PIL resize to 224; flip without re-ordering the points; the
    official random-resized crop (scale 0.75-1, landmarks truncated);
    colour jitter 0.4 without hue; random erasing p 0.2, scale 0.02-0.2,
    filled with the mean colour (0 after normalisation); the points checked
    by LandmarkTargets, which the model renders as stride-4 heatmaps (sigma
    1.5, weight 10 above 0.2). Test: resize only."""
    cfg = Config.fromfile(path)
    train = [t.to_dict() for t in cfg.train_dataloader.dataset.pipeline]
    assert [t['type'] for t in train] == [
        'LoadFERImage', 'ResizeWithLandmarks', 'RandomFlipWithLandmarks',
        'RandomResizedCropWithLandmarks', 'ColorJitter', 'RandomErasing',
        'LandmarkTargets', 'PackFERInputs'
    ]
    resize = dict(
        type='ResizeWithLandmarks',
        scale=(224, 224),
        interpolation='bicubic',
        backend='pillow')
    assert train[1] == resize
    assert train[2] == dict(
        type='RandomFlipWithLandmarks', prob=0.5, permute_landmarks=False)
    assert train[3] == dict(
        type='RandomResizedCropWithLandmarks',
        size=224,
        scale=(0.75, 1.0),
        ratio=(3. / 4., 4. / 3.),
        interpolation='bicubic',
        backend='pillow',
        truncate_landmarks=True)
    assert train[4] == dict(
        type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4)
    erasing = train[5]
    assert {k: v for k, v in erasing.items() if k != 'fill_color'} == dict(
        type='RandomErasing',
        erase_prob=0.2,
        min_area_ratio=0.02,
        max_area_ratio=0.2,
        aspect_range=(0.3, 3.3),
        mode='const')
    pre = cfg.model.data_preprocessor
    rgb_fill = np.array(erasing['fill_color'][::-1])  # BGR before to_rgb
    np.testing.assert_allclose(
        (rgb_fill - np.array(pre.mean)) / np.array(pre.std), 0, atol=1e-12)
    assert set(train[6]) == {'type', 'num_landmarks'}
    assert cfg.model.heatmap.to_dict() == LANET_HEATMAP
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert [t.to_dict() for t in loader.dataset.pipeline] == [
            dict(type='LoadFERImage'), resize,
            dict(type='PackFERInputs')
        ]


def test_lanet_landmarks_per_dataset():
    """RAF-DB: LA-Net's 19 HRNet points as aligned-crop landmark files;
    AffectNet: its own 68 points, loaded from the CSV."""
    for path in LANET_PAPER:
        cfg = Config.fromfile(path)
        dataset = cfg.train_dataloader.dataset
        if 'affectnet' in osp.basename(path):
            assert dataset.with_landmarks is True
            assert _heatmap_landmarks(cfg) == 68
        else:
            assert dataset.landmarks == 'aligned'
            assert _heatmap_landmarks(cfg) == 19
        assert cfg.model.landmark_neck.num_landmarks == \
            _heatmap_landmarks(cfg)


def test_lanet_noise():
    """EAC's public noise files per noise level (comparable with the other
    methods); LA-Net's own seeded draw for rafdb-lanet-noise30."""
    expected = {
        'r18_rafdb_noise0.py': None,
        'r18_rafdb_noise10.py': 'EmoLabel/noise01.txt',
        'r18_rafdb_noise20.py': 'EmoLabel/noise02.txt',
        'r18_rafdb_noise30.py': 'EmoLabel/noise03.txt',
        'lanet-eac_resnet18-msceleb-pre_2xb64-80e_rafdb-noise30.py':
        'EmoLabel/noise03.txt',
    }
    for name, noise_file in expected.items():
        dataset = _lanet(name).train_dataloader.dataset
        assert dataset.get('noise_file') == noise_file, name
        assert 'noise_rate' not in dataset, name
    own = _lanet(f'{LANET_LONG}_rafdb-lanet-noise30.py')
    dataset = own.train_dataloader.dataset
    assert dataset.get('noise_file') is None
    assert (dataset.noise_rate, dataset.noise_type, dataset.noise_seed) == \
        (0.3, 'lanet', 0)


def test_lanet_short_names():
    pairs = {
        'r18_rafdb_noise0.py': f'{LANET_LONG}_rafdb.py',
        'r18_rafdb_noise10.py': f'{LANET_LONG}_rafdb-noise10.py',
        'r18_rafdb_noise20.py': f'{LANET_LONG}_rafdb-noise20.py',
        'r18_rafdb_noise30.py': f'{LANET_LONG}_rafdb-noise30.py',
        'r18_affectnet7.py': f'{LANET_LONG}_affectnet7.py',
    }
    for short, full in pairs.items():
        assert _lanet(short).to_dict() == _lanet(full).to_dict(), short


def test_lanet_eac_configs_carry_eacs_head():
    """LA-Net x EAC: EAC's head (the one of EAC's own config for the same
    data) on the expression tower, no neck; everything else is the LA-Net
    config it inherits."""
    for name, base, eac in (
        ('lanet-eac_resnet18-msceleb-pre_2xb64-80e_rafdb-noise30.py',
         'r18_rafdb_noise30.py', 'r18_rafdb_noise30.py'),
        ('lanet-eac_r18_synthfer_noise30.py', 'r18_synthfer_noise30.py',
         'r18_synthfer_noise30.py'),
    ):
        cfg, base_cfg = _lanet(name), _lanet(base)
        eac_head = Config.fromfile(
            osp.join(REPO, 'configs', 'eac', eac)).model.head.to_dict()
        model = cfg.model.to_dict()
        assert model['head'] == eac_head and model['head']['type'] == \
            'EACHead'
        assert model['neck'] is None
        base_model = base_cfg.model.to_dict()
        for key in set(model) | set(base_model):
            if key not in ('head', 'neck'):
                assert model.get(key) == base_model.get(key), (name, key)
        for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper',
                    'param_scheduler', 'train_cfg'):
            assert cfg[key] == base_cfg[key], (name, key)


def test_lanet_synthfer_recipe_changes_only_the_method():
    """The SynthFER recipe keeps the baseline demo's data (dataset, noise,
    batch, sampler, pipelines up to moving the landmarks with the image),
    optimiser, schedule and epochs, and its queue holds whole batches."""
    base = Config.fromfile(
        osp.join(REPO, 'configs', 'baseline', 'r18_synthfer_noise30.py'))
    cfg = _lanet('r18_synthfer_noise30.py')
    for key in ('val_dataloader', 'test_dataloader', 'optim_wrapper',
                'param_scheduler', 'train_cfg', 'data_preprocessor',
                'auto_scale_lr'):
        assert cfg[key] == base[key], key
    train, base_train = cfg.train_dataloader, base.train_dataloader
    assert train.batch_size == base_train.batch_size
    for key in ('type', 'data_root', 'split', 'noise_rate', 'noise_type',
                'noise_seed'):
        assert train.dataset[key] == base_train.dataset[key], key
    assert train.sampler == base_train.sampler
    # the baseline's resize and flip, landmark-aware; the flip swaps the
    # SynthFER points so each heatmap keeps one anatomical point
    assert [t['type'] for t in train.dataset.pipeline] == [
        'LoadFERImage', 'ResizeWithLandmarks', 'RandomFlipWithLandmarks',
        'LandmarkTargets', 'PackFERInputs'
    ]
    assert [t['type'] for t in base_train.dataset.pipeline] == [
        'LoadFERImage', 'Resize', 'RandomFlip', 'PackFERInputs'
    ]
    assert train.dataset.pipeline[2]['permute_landmarks'] is True
    assert train.drop_last and cfg.model.queue_size % train.batch_size == 0
    assert cfg.model.type == 'LANetClassifier'
    assert cfg.model.landmark_neck.num_landmarks == \
        _heatmap_landmarks(cfg) == 37


def test_lanet_configs_state_the_class_defaults():
    """The configs spell out LA-Net's constants, and they are the defaults
    of the classes (each says it defaults to the official value)."""
    cfg = _lanet('r18_rafdb_noise30.py')
    checks = [(MODELS, 'LANetClassifier',
               dict(LANET_MODEL_ARGS, heatmap=LANET_HEATMAP))]
    checks += [(MODELS, c['type'], c) for c in LANET_COMPONENTS.values()]
    for registry, name, args in checks:
        params = inspect.signature(registry.get(name).__init__).parameters
        for key, value in args.items():
            if key != 'type':
                assert params[key].default == value, (name, key)
    assert cfg.model.heatmap.to_dict() == LANET_HEATMAP


def test_lanet_rafdb_model_has_the_official_parameter_count():
    """The official ResNet-18 LA-Net trains 22.74 M parameters: the shared
    conv1/bn1/layer1, two copies of layer2-4, fc Linear(512, 7), the FPN's
    four 1x1 laterals and 1x1 heatmap conv (64 -> 19, all without bias),
    the two LDE scorers (0.434 M) and the two online projection heads.
    mmfer's model has exactly these parameters (22,741,019): nothing
    differs. The
    frozen momentum copy (towers, FPN, projection heads) is not trained;
    prediction uses the expression path alone, a plain ResNet-18 with
    Linear(512, 7)."""
    model, _ = _build(_lanet('r18_rafdb_noise30.py'))

    def count(module, trainable=True):
        return sum(p.numel() for p in module.parameters()
                   if p.requires_grad or not trainable)

    def linear(i, o):
        return i * o + o

    def scorer(d):  # fc_in, then the pair MLP D -> D/2 -> D/4 -> 2
        return (linear(d, d) + linear(d, d // 2) + linear(d // 2, d // 4) +
                linear(d // 4, 2))

    plain = MODELS.build(dict(type='ResNet', depth=18))
    stem_layer1 = count(plain.conv1) + count(plain.norm1) + \
        count(plain.layer1)
    tower = count(plain.layer2) + count(plain.layer3) + count(plain.layer4)
    fpn = 64 * (64 + 128 + 256 + 512) + 64 * 19
    projections = linear(512, 64) + linear(64, 64) + 2 * linear(64, 64)
    scorers = scorer(512) + scorer(64)
    fc = linear(512, 7)
    expected = stem_layer1 + 2 * tower + fc + fpn + scorers + projections
    assert count(model) == expected == 22_741_019
    assert round(count(model) / 1e6, 2) == 22.74
    assert round(count(model.label_distribution) / 1e6, 3) == 0.434
    momentum = model.momentum_encoder
    assert count(momentum) == 0
    assert count(momentum, trainable=False) == \
        stem_layer1 + 2 * tower + fpn + projections
    inference = stem_layer1 + tower + fc
    assert inference == 11_180_103
    assert count(model.backbone.expr_tower) + count(model.head) == inference
