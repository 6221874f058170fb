# GSMC on SynthFER with 30% seeded symmetric noise, from scratch. Data,
# noise, optimiser, schedule and epochs are the baseline demo config's (so
# not GSMC's Adam 1e-3 / StepLR recipe), the method is GSMC's: mean
# teacher, flipped-view attention consistency, GSMC's augmentations.
_base_ = [
    '../baseline/r18_synthfer_noise30.py', './_base_/gsmc_transforms.py'
]

model = dict(
    _delete_=True,
    type='MeanTeacherClassifier',
    backbone=_base_.model.backbone,  # the baseline's
    ema=dict(
        type='MomentumAnnealingEMA',
        momentum=0.001,
        gamma=1,
        update_buffers=False),
    teacher_view=1,
    teacher_mode='train',
    student=dict(
        neck=None,
        head=dict(
            type='GSMCHead',
            num_classes=7,
            distill_loss=dict(type='KLDivergenceLoss', loss_weight=0.9),
            att_loss=dict(type='AttentionConsistencyLoss', loss_weight=0.2),
            topk=(1, ))))

img_size = {{_base_.img_size}}
train_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='mmcv.RandomApply',
        prob=0.2,
        transforms=[
            dict(
                type='Rotate',
                magnitude_range=(0, 20),
                magnitude_std='inf',
                random_negative_prob=0.5,
                pad_val=0,
                interpolation='nearest',
                prob=1.0),
            # GSMC pads 32 px at 224 px; 9 px is the same share at 64 px
            dict(
                type='RandomCrop', crop_size=img_size, padding=9,
                pad_val=0),
        ]),
    {{_base_.gsmc_random_erasing}},
    dict(type='PackFERInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# The teacher's EMA after every optimiser step.
custom_hooks = _base_.custom_hooks + [dict(type='MeanTeacherHook', interval=1)]
