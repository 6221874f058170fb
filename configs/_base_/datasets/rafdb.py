# RAF-DB basic at 112x112. data_root is relative to the mmfer repo root,
# like mmpretrain's data/ (see docs/datasets.md for the layout).
_base_ = ['./fer_evaluation.py']

dataset_type = 'RAFDBDataset'
data_root = 'data/rafdb'
img_size = 112

data_preprocessor = dict(
    num_classes=7,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackFERInputs'),
]
test_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackFERInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
# RAF-DB has no validation split: the (always clean) test split is
# evaluated every epoch, and the last epoch is the reported result.
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
