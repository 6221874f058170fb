# EAC (Zhang et al., ECCV 2022): the model of the official recipe
# (src/model.py, src/loss.py) on the authors' ResNet-18, the MS-Celeb-1M
# one of the model base. Inherit it beside a dataset base,
# ./eac_transforms.py, the Adam schedule and the runtime.
_base_ = [
    '../../_base_/models/resnet18-msceleb-pre_fer.py', './eac_head.py'
]

model = dict(
    # 'separate': one backbone pass per view, each with its own BatchNorm
    # statistics, as the official script, whose training step this equals.
    # 'joint' (both views in one batch) is faster on GPU but its joint
    # BatchNorm statistics change a step's backbone gradients by as much as
    # the gradients themselves; it is a switch, not the recipe.
    view_batching='separate',
    neck=None,  # the head pools itself: it needs the feature map
    head=_base_.eac_head)
