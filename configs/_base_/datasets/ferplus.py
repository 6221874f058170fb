# FERPlus (FER2013 faces + Microsoft's votes) at 112x112, 8 classes,
# majority labels. data_root is relative to the mmfer repo root; see
# docs/datasets.md for the files. The 48x48 greyscale faces are decoded from
# fer2013.csv once per process and LoadFERImage makes them 3-channel BGR.
_base_ = ['./fer_evaluation.py']

dataset_type = 'FERPlusDataset'
data_root = 'data/ferplus'
img_size = 112
num_classes = 8

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
        label_mode='majority',
        vote_source='fer2013new',
        img_source='csv',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
# FERPlus has a real validation split (PublicTest); the test split is
# PrivateTest. Both always use majority labels (the FERPlus protocol).
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        num_classes=num_classes,
        vote_source='fer2013new',
        img_source='csv',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        num_classes=num_classes,
        vote_source='fer2013new',
        img_source='csv',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
