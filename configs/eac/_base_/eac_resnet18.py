# EAC (Zhang et al., ECCV 2022): the model of the official recipe
# (src/model.py, src/loss.py) on the authors' ResNet-18. Inherit it beside a
# dataset base, ./eac_transforms.py, the Adam schedule and the runtime.

# CE on view 1 + 5 x MSE between its class activation maps (all classes,
# detached classifier weight) and the mirrored maps of view 2.
model = dict(
    type='FERClassifier',
    # 'separate': one backbone pass per view, each with its own BatchNorm
    # statistics, as the official script, whose training step this equals.
    # 'joint' (both views in one batch) is faster on GPU but its joint
    # BatchNorm statistics change a step's backbone gradients by as much as
    # the gradients themselves; it is a switch, not the recipe.
    view_batching='separate',
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        # MS-Celeb-1M face-recognition weights (RUL/dacl), converted and
        # checked by tools/model_converters/face_weights_to_mmpretrain.py
        # (docs/pretrained.md).
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet18_msceleb_mmpretrain.pth')),
    neck=None,  # the head pools itself: it needs the feature map
    head=dict(
        type='EACHead',
        num_classes=7,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        att_loss=dict(type='AttentionConsistencyLoss', loss_weight=5.0),
        detach_cam_weight=True,
        topk=(1, )))
