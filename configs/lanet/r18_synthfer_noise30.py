# LA-Net on SynthFER with 30% seeded symmetric noise, from scratch, with
# SynthFER's exact 37 landmarks: the `make demo` recipe. Data, noise,
# optimiser, schedule, epochs and batch are the baseline demo config's, so
# the runs differ only in the method: the baseline's quarter-width
# ResNet-18 as LA-Net's two towers (shared stem and first stage), LA-Net's
# losses, augmentation and progressively class-balanced sampler.
_base_ = ['../baseline/r18_synthfer_noise30.py']

img_size = 64
num_landmarks = 37
model = dict(
    _delete_=True,
    type='LANetClassifier',
    backbone=dict(
        type='ExpressionLandmarkBackbone',
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=16,
            stem_channels=16,
            out_indices=(0, 1, 2, 3),
            style='pytorch')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=7,
        in_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )),
    # 64 x the width factor (1/4) as the official 64 channels of ResNet-18
    landmark_neck=dict(
        type='LandmarkFPN', out_channels=16, num_landmarks=num_landmarks),
    # LA-Net's queue holds 2/3 of RAF-DB (8192 of 12,271 keys); the same
    # share of SynthFER's 2,000 training images, in whole batches of 32
    queue_size=1344)

train_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='ResizeWithLandmarks', scale=(img_size, img_size)),
    dict(type='RandomFlipWithLandmarks', prob=0.5, permute_landmarks=False),
    dict(
        type='RandomResizedCropWithLandmarks',
        size=img_size,
        scale=(0.75, 1.0),
        truncate_landmarks=True),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(
        type='RandomErasing',
        erase_prob=0.2,
        min_area_ratio=0.02,
        max_area_ratio=0.2,
        aspect_range=(0.3, 3.3),
        mode='const',
        fill_color=(103.53, 116.28, 123.675)),
    dict(type='LandmarkTargets', num_landmarks=num_landmarks),
    dict(type='PackFERInputs'),
]
train_dataloader = dict(
    drop_last=True,
    sampler=dict(
        _delete_=True, type='ProgressiveClassBalancedSampler', max_epoch=16),
    dataset=dict(landmarks='aligned', pipeline=train_pipeline))
