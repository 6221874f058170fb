# EAC (Zhang et al., ECCV 2022): the model of the official recipe
# (src/model.py, src/loss.py) on the authors' ResNet-18, the MS-Celeb-1M
# one of the model base. Inherit it beside a dataset base,
# ./eac_transforms.py, the Adam schedule and the runtime.
_base_ = ['../../_base_/models/resnet18_fer.py']

# CE on view 1 + 5 x MSE between its class activation maps (all classes,
# detached classifier weight) and the mirrored maps of view 2.
model = dict(
    # 'separate': one backbone pass per view, each with its own BatchNorm
    # statistics, as the official script, whose training step this equals.
    # 'joint' (both views in one batch) is faster on GPU but its joint
    # BatchNorm statistics change a step's backbone gradients by as much as
    # the gradients themselves; it is a switch, not the recipe.
    view_batching='separate',
    neck=None,  # the head pools itself: it needs the feature map
    # the model base's classes, loss and top-k
    head=dict(
        type='EACHead',
        att_loss=dict(type='AttentionConsistencyLoss', loss_weight=5.0),
        detach_cam_weight=True))
