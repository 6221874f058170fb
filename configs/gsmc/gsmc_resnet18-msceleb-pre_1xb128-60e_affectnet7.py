# GSMC, MS-Celeb-1M ResNet-18, AffectNet 7 classes (class-balanced sampler
# from the dataset base), clean labels. No official code or result exists
# for this dataset; the RAF-DB recipe.
_base_ = [
    '../_base_/datasets/affectnet7.py', './_base_/gsmc_resnet18.py',
    './_base_/gsmc_transforms.py'
]

train_pipeline = {{_base_.gsmc_train_pipeline}}
test_pipeline = {{_base_.gsmc_test_pipeline}}
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
