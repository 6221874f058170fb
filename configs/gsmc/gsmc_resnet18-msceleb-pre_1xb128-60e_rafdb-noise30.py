# GSMC, MS-Celeb-1M ResNet-18, RAF-DB with EAC's public 30% noise file. The
# official script reads noise02.txt but never uses it and trains on the
# clean labels of train_labels.csv; this applies its recipe to the noisy
# labels. Batch 128, 224 px, seed 42.
_base_ = [
    '../_base_/datasets/rafdb.py', './_base_/gsmc_resnet18.py',
    './_base_/gsmc_transforms.py'
]

train_pipeline = {{_base_.gsmc_train_pipeline}}
test_pipeline = {{_base_.gsmc_test_pipeline}}
train_dataloader = dict(
    batch_size=128,
    dataset=dict(noise_file='EmoLabel/noise03.txt', pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
