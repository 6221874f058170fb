# Baseline on SynthFER with 30% seeded symmetric noise, trained from scratch
# (no face weights needed): the `make demo` recipe, minutes on a CPU.
# Every method's SynthFER config inherits this recipe, so they differ only
# in the method.
_base_ = [
    '../_base_/datasets/synthfer.py', '../_base_/models/resnet18_fer.py',
    '../_base_/schedules/adam_60e.py', '../_base_/default_runtime.py'
]

# ResNet-18 at a quarter of its width, so that 24 epochs of two methods fit
# the 10-minute demo on 2 CPU cores. 24 epochs are needed to see the noisy
# labels being memorised: the baseline's test accuracy peaks after 6-8
# epochs, then falls as it fits the flipped labels.
model = dict(
    backbone=dict(base_channels=16, stem_channels=16),
    head=dict(in_channels=128))

train_dataloader = dict(
    dataset=dict(noise_rate=0.3, noise_type='symmetric', noise_seed=0))

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4))
max_epochs = 24
param_scheduler = dict(
    _delete_=True,
    type='CosineAnnealingLR',
    by_epoch=True,
    T_max=max_epochs,
    eta_min=1e-5)
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=10))
