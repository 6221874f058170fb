# LA-Net's optimisation (official train.py): Adam, lr 1e-3, default betas,
# no weight decay; the lr decays linearly to 0, stepped every iteration;
# 80 epochs; global batch 128 (2 GPUs x 64) without the last partial batch;
# each epoch's class mix moves from the natural one to uniform.
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
lanet_max_epochs = 80
param_scheduler = dict(
    type='LinearLR',
    start_factor=1.0,
    end_factor=0.0,
    by_epoch=True,
    begin=0,
    end=lanet_max_epochs,
    convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=lanet_max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
lanet_sampler = dict(
    _delete_=True,
    type='ProgressiveClassBalancedSampler',
    max_epoch=lanet_max_epochs)
# The official global batch (`--auto-scale-lr` scales from it).
auto_scale_lr = dict(base_batch_size=128)
