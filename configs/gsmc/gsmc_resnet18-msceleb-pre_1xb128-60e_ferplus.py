# GSMC, MS-Celeb-1M ResNet-18, FERPlus, clean labels. No official code or
# result exists for this dataset; the RAF-DB recipe.
_base_ = [
    '../_base_/datasets/ferplus.py', './_base_/gsmc_resnet18.py',
    './_base_/gsmc_transforms.py'
]

train_pipeline = {{_base_.gsmc_train_pipeline}}
test_pipeline = {{_base_.gsmc_test_pipeline}}
# The 7 basic classes (FERPlus without contempt), as EAC's authors used.
data_preprocessor = dict(num_classes=7)
train_dataloader = dict(
    batch_size=128, dataset=dict(num_classes=7, pipeline=train_pipeline))
# FERPlus has a validation split (PublicTest) and a test split (PrivateTest).
val_dataloader = dict(
    batch_size=128, dataset=dict(num_classes=7, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=128, dataset=dict(num_classes=7, pipeline=test_pipeline))
