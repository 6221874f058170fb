# Baseline on SynthFER with 30% seeded symmetric noise, trained from scratch
# (no face weights needed): the `make demo` recipe, a few minutes on a CPU.
# Every method's SynthFER config inherits this recipe, so they differ only
# in the method.
_base_ = [
    '../_base_/datasets/synthfer.py', '../_base_/models/resnet18_fer.py',
    '../_base_/schedules/adam_60e.py', '../_base_/default_runtime.py'
]

# ResNet-18 at a quarter of its width, from random weights, on 2,000
# images at 64 px: two methods train and test in about 5 minutes on one CPU
# thread, and 16 epochs are enough to see the noisy labels being memorised:
# the baseline's test accuracy peaks after ~8 epochs, then falls as it fits
# the flipped labels.
model = dict(backbone=dict(base_channels=16, stem_channels=16))

# Batches of 32: twice the optimiser steps per epoch of 64, which training
# from scratch on 2,000 images needs.
train_dataloader = dict(
    batch_size=32,
    dataset=dict(noise_rate=0.3, noise_type='symmetric', noise_seed=0))

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4))
max_epochs = 16
param_scheduler = dict(
    _delete_=True,
    type='CosineAnnealingLR',
    by_epoch=True,
    T_max=max_epochs,
    eta_min=1e-5)
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=10))
