# ReSup, AffectNet 7 classes, clean labels. The official code ships no
# AffectNet loader (only commented paths) and its subset protocol is
# unknown; the dataset base's class-balanced sampler is kept, as every
# published AffectNet result uses one. The RAF-DB recipe otherwise.
_base_ = [
    '../_base_/datasets/affectnet7.py', './_base_/resup_schedule.py',
    './_base_/resup_resnet18.py', './_base_/resup_transforms.py'
]

train_pipeline = {{_base_.resup_train_pipeline}}
test_pipeline = {{_base_.resup_test_pipeline}}
train_dataloader = dict(batch_size=96, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
