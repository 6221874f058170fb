# AffectNet-7 (expression codes 0..6) at 112x112 from the official CSV
# lists, faces cropped to the annotated box. There is no public test set:
# the test split is the official validation set (3,500 images). AffectNet
# is very imbalanced (Happy 134k, Disgust 4k), so training draws samples
# with probability 1/class count, as every published AffectNet result does.
_base_ = ['./fer_evaluation.py']

dataset_type = 'AffectNetDataset'
data_root = 'data/affectnet'
img_size = 112
num_classes = 7

data_preprocessor = dict(
    num_classes=num_classes,
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
        num_classes=num_classes,
        layout='csv',
        crop_face=True,
        face_margin=0.0,
        pipeline=train_pipeline),
    sampler=dict(type='ClassBalancedSampler'))
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        num_classes=num_classes,
        layout='csv',
        crop_face=True,
        face_margin=0.0,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
