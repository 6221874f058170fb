# ResNet-18 with a linear head for the 7 basic expressions, started from
# MS-Celeb-1M face-recognition weights: the model every method inherits.
# Heads and necks take their input width from the backbone (measured when
# the model is built), so one line swaps the backbone of any method:
#   model = dict(backbone=dict(_delete_=True, type='ConvNeXt', arch='atto'))
model = dict(
    type='FERClassifier',
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
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=7,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
