# What every FER dataset base shares: ImageNet normalisation, the 112x112
# pipelines, the dataloader settings and the evaluation. A dataset base
# (rafdb.py, ferplus.py, affectnet7.py) adds its dataset type, data_root,
# number of classes and splits.
_base_ = ['./fer_evaluation.py']

img_size = 112

data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

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

# Every pipeline ends at one image size, so workers stack each batch into
# one tensor per view (default_collate): one shared-memory transfer per
# view instead of one per image, and the data preprocessor normalises the
# stacked batch in place. The values are the same as with mmengine's
# pseudo_collate.
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(split='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=128,
    num_workers=4,
    persistent_workers=True,
    collate_fn=dict(type='default_collate'),
    dataset=dict(pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
