# EAC, MS-Celeb-1M ResNet-18, RAF-DB with EAC's public 30% noise file
# (noise03.txt): the official recipe, noisy-label path. Adam lr 2e-4 (the
# ResNet-18 setting, README FAQ / issue #3), L2 1e-4, lr x0.9 per epoch,
# 60 epochs, batch 32, 224 px.
_base_ = [
    '../_base_/datasets/rafdb.py', '../_base_/schedules/adam_60e.py',
    '../_base_/default_runtime.py', './_base_/eac_resnet18.py',
    './_base_/eac_transforms.py'
]

train_pipeline = {{_base_.eac_noisy_train_pipeline}}
test_pipeline = {{_base_.eac_test_pipeline}}
train_dataloader = dict(
    batch_size=32,  # the official batch (issue #20: other sizes hurt)
    dataset=dict(noise_file='EmoLabel/noise03.txt', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

auto_scale_lr = dict(base_batch_size=32)
