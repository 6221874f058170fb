# Copyright (c) OpenMMLab. All rights reserved.
"""Train on RAF-DB, test on FERPlus and AffectNet in RAF-DB's class order."""

import numpy as np
import pytest
import torch
from dataset_bases import dataset_base
from fer_replicas import make_affectnet, make_ferplus
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS

import mmfer  # noqa: F401
from mmfer.datasets import RAFDB_CLASSES

PIPELINE = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackFERInputs'),
]
MODEL = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        num_classes=7,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=7,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss')))
EVALUATOR = [dict(type='Accuracy', topk=(1, )), dict(type='ConfusionMatrix')]


def loader(dataset, shuffle=False):
    return dict(
        batch_size=8,
        num_workers=0,
        dataset=dict(pipeline=PIPELINE, serialize_data=False, **dataset),
        sampler=dict(type='DefaultSampler', shuffle=shuffle))


def runner_kwargs(tmp_path, name):
    return dict(
        work_dir=str(tmp_path / name),
        experiment_name=f'mmfer_cross_dataset_{name}',
        default_scope='mmpretrain',
        log_level='WARNING',
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=-1)),
        randomness=dict(seed=0))


def test_train_rafdb_test_ferplus_and_affectnet(tiny_rafdb, tmp_path):
    ferplus = make_ferplus(str(tmp_path / 'ferplus'), pngs=False)
    affectnet = make_affectnet(str(tmp_path / 'affectnet'))
    tests = {
        # FERPlus PrivateTest: one clear majority per FERPlus class, in
        # FERPlus order (Neutral, Happiness, Surprise, Sadness, Anger,
        # Disgust, Fear, Contempt); Contempt is not a RAF-DB class
        'ferplus': (dict(
            type='FERPlusDataset',
            data_root=ferplus,
            split='test',
            label_map='rafdb'), [6, 3, 0, 4, 5, 2, 1]),
        # AffectNet validation.csv, 8-class protocol: codes 0..7 (Neutral,
        # Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt)
        'affectnet': (dict(
            type='AffectNetDataset',
            data_root=affectnet,
            split='test',
            num_classes=8,
            crop_face=True,
            label_map='rafdb'), [6, 3, 4, 0, 1, 2, 5]),
    }
    for cfg, expected in tests.values():
        dataset = DATASETS.build(dict(cfg, serialize_data=False))
        assert dataset.CLASSES == RAFDB_CLASSES
        labels = [
            dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))
        ]
        assert labels == expected  # e.g. happiness -> RAF-DB index 3

    trainer = Runner(
        model=MODEL,
        train_dataloader=loader(
            dict(type='RAFDBDataset', data_root=tiny_rafdb), shuffle=True),
        train_cfg=dict(by_epoch=False, max_iters=3, val_interval=100),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        **runner_kwargs(tmp_path, 'train'))
    trainer.train()
    model = trainer.model
    for name, (cfg, expected) in tests.items():
        tester = Runner(
            model=model,
            test_dataloader=loader(cfg),
            test_cfg=dict(),
            test_evaluator=EVALUATOR,
            **runner_kwargs(tmp_path, name))
        metrics = tester.test()
        # the reference: the trained model's own predictions on the set,
        # scored by hand against the RAF-DB labels listed above
        dataset = DATASETS.build(
            dict(cfg, pipeline=PIPELINE, serialize_data=False))
        with torch.no_grad():
            preds = model.val_step(
                pseudo_collate([dataset[i] for i in range(len(dataset))]))
        predicted = [int(p.pred_label) for p in preds]
        reference = np.zeros((7, 7), dtype=np.int64)
        np.add.at(reference, (expected, predicted), 1)
        np.testing.assert_array_equal(
            metrics['confusion_matrix/result'].numpy(), reference)
        correct = sum(p == y for p, y in zip(predicted, expected))
        assert metrics['accuracy/top1'] == pytest.approx(
            100 * correct / len(expected))


@pytest.mark.parametrize(
    'name',
    ['ferplus', 'ferplus_224', 'affectnet7', 'affectnet8', 'affectnet8_224'])
def test_dataset_configs_build_on_replicas(name, tmp_path):
    cfg = dataset_base(name)
    if name.startswith('ferplus'):
        root = make_ferplus(str(tmp_path / 'ferplus'), pngs=False)
    else:
        root = make_affectnet(str(tmp_path / 'affectnet'))
    num_classes = cfg.data_preprocessor.num_classes
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader_cfg = cfg[key].copy()
            loader_cfg.update(num_workers=0, persistent_workers=False)
            loader_cfg.dataset.update(data_root=root, serialize_data=False)
            loader = Runner.build_dataloader(loader_cfg, seed=0)
            assert len(loader.dataset.CLASSES) == num_classes
            batch = next(iter(loader))
            size = cfg.img_size
            assert batch['inputs'][0].shape == (3, size, size)
    assert type(loader.dataset).__name__ == cfg.dataset_type
