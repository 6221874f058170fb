# EAC, MS-Celeb-1M ResNet-18, AffectNet 7 classes. No official code exists
# for AffectNet; the authors used a class-balanced sampler (issue #21), which
# the dataset base already sets. Clean labels, so the clean-label path; the
# RAF-DB recipe otherwise.
_base_ = [
    '../_base_/datasets/affectnet7.py', '../_base_/schedules/adam_60e.py',
    '../_base_/default_runtime.py', './_base_/eac_resnet18.py',
    './_base_/eac_transforms.py'
]

train_pipeline = {{_base_.eac_clean_train_pipeline}}
test_pipeline = {{_base_.eac_test_pipeline}}
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

auto_scale_lr = dict(base_batch_size=32)
