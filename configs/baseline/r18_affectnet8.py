# Baseline: ResNet-18 (MS-Celeb-1M pre-trained) + cross-entropy on
# AffectNet-8 (with Contempt) with class-balanced sampling; tested on the
# official validation set.
_base_ = [
    '../_base_/datasets/affectnet8.py',
    '../_base_/models/resnet18-msceleb-pre_fer.py',
    '../_base_/schedules/adam_60e.py', '../_base_/default_runtime.py'
]

model = dict(head=dict(num_classes=8))
