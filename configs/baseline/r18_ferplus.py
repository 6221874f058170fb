# Baseline: ResNet-18 (MS-Celeb-1M pre-trained) + cross-entropy on FERPlus,
# 8 classes, majority labels from fer2013new.csv. Validated on PublicTest,
# tested on PrivateTest.
_base_ = [
    '../_base_/datasets/ferplus.py',
    '../_base_/models/resnet18-msceleb-pre_fer.py',
    '../_base_/schedules/adam_60e.py', '../_base_/default_runtime.py'
]

model = dict(head=dict(num_classes=8))
