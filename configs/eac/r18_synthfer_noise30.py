# EAC on SynthFER with 30% seeded symmetric noise, from scratch: the
# `make demo` recipe. Everything but the method (data, noise, optimiser,
# schedule, epochs) comes from the baseline's demo config, so the two runs
# differ only in EAC's model and views.
_base_ = [
    '../baseline/r18_synthfer_noise30.py', './_base_/eac_transforms.py',
    './_base_/eac_head.py'
]

# On the baseline's ResNet-18: no pooling neck (the head pools and builds
# the attention maps), EAC's head and loss. One backbone pass
# per view, as the official step (on a CPU, batching the views saves no
# time). Attention weight 1 instead of the paper's 5: from random weights
# the attention term's backbone gradient is ~5x the cross-entropy one and
# holds EAC near chance level for the first ~8 epochs; the paper starts
# from a face-recognition backbone, where the class signal is there from
# the first step.
model = dict(
    view_batching='separate',
    neck=None,
    head=dict(
        _base_.eac_head,
        att_loss=dict(type='AttentionConsistencyLoss', loss_weight=1.0)))

# EAC's noisy-label views at SynthFER's image size (no random flip on
# view 1; view 2 is the flipped raw image with its own erasing draw).
resize = dict(type='Resize', scale=({{_base_.img_size}}, {{_base_.img_size}}))
train_pipeline = [
    dict(type='LoadFERImage'),
    dict(
        type='MultiView',
        num_views=[1, 1],
        transforms=[
            [{{_base_.eac_gaussian_noise}}, resize,
             {{_base_.eac_random_erasing}}],
            [
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
                resize, {{_base_.eac_random_erasing}}
            ],
        ]),
    dict(type='PackFERInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
