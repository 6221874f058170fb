# EAC, MS-Celeb-1M ResNet-18, FERPlus (7 basic classes, as the authors say
# in issue #21; no official code exists for FERPlus). Clean labels, so the
# clean-label path; the RAF-DB recipe otherwise.
_base_ = [
    '../_base_/datasets/ferplus.py', '../_base_/schedules/adam_60e.py',
    '../_base_/default_runtime.py', './_base_/eac_resnet18.py',
    './_base_/eac_transforms.py'
]

train_pipeline = {{_base_.eac_clean_train_pipeline}}
test_pipeline = {{_base_.eac_test_pipeline}}
# The 7 basic classes (FERPlus without contempt), as EAC's authors used.
data_preprocessor = dict(num_classes=7)
train_dataloader = dict(
    batch_size=32, dataset=dict(num_classes=7, pipeline=train_pipeline))
# FERPlus has a validation split (PublicTest) and a test split (PrivateTest).
val_dataloader = dict(
    batch_size=128, dataset=dict(num_classes=7, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=128, dataset=dict(num_classes=7, pipeline=test_pipeline))

auto_scale_lr = dict(base_batch_size=32)
