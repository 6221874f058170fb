# ReSup, FERPlus, clean majority labels, 7 classes: the official model is
# hard-wired to 7 classes and ships no FERPlus loader (only a commented
# one-folder-per-class path), so the class set follows EAC's FERPlus
# configs (FERPlus without contempt). The RAF-DB recipe otherwise.
_base_ = [
    '../_base_/datasets/ferplus.py', './_base_/resup_schedule.py',
    './_base_/resup_resnet18.py', './_base_/resup_transforms.py'
]

train_pipeline = {{_base_.resup_train_pipeline}}
test_pipeline = {{_base_.resup_test_pipeline}}
data_preprocessor = dict(num_classes=7)
train_dataloader = dict(
    batch_size=96, dataset=dict(num_classes=7, pipeline=train_pipeline))
# FERPlus has a validation split (PublicTest) and a test split (PrivateTest).
val_dataloader = dict(
    batch_size=32, dataset=dict(num_classes=7, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=32, dataset=dict(num_classes=7, pipeline=test_pipeline))
