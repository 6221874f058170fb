# ResNet-18 with a linear head for the 7 basic expressions, with
# mmpretrain's initialisation: the model every method inherits (through
# ./resnet18-msceleb-pre_fer.py where it starts from face weights). Heads
# and necks take their input width from the backbone (measured when the
# model is built), so one line swaps the backbone of any method:
#   model = dict(backbone=dict(_delete_=True, type='ConvNeXt', arch='atto'))
model = dict(
    type='FERClassifier',
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=7,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
