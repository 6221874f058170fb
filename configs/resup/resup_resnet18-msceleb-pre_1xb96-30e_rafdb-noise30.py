# ReSup, MS-Celeb-1M (network 0) + ImageNet (network 1) ResNet-18s, RAF-DB
# with EAC's public 30% noise file (noise03.txt), so that ReSup is compared
# with the other methods on the same labels. The official recipe: Adam
# lr 2e-4, no weight decay, lr x0.1 after epochs 10 and 20, 30 epochs,
# batch 96 (test 32), 224 px, one warm-up epoch, the mixtures refitted after
# every epoch. configs/resup/r18_rafdb_resup-noise30.py uses ReSup's own file.
_base_ = [
    '../_base_/datasets/rafdb.py', './_base_/resup_schedule.py',
    './_base_/resup_resnet18.py', './_base_/resup_transforms.py'
]

train_pipeline = {{_base_.resup_train_pipeline}}
test_pipeline = {{_base_.resup_test_pipeline}}
train_dataloader = dict(
    batch_size=96,
    dataset=dict(noise_file='EmoLabel/noise03.txt', pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
