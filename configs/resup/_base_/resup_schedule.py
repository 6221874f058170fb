# ReSup's optimisation (official main.py): one Adam over both networks,
# lr 2e-4, default betas, no weight decay; lr x0.1 after epochs 10 and 20
# (stepped once per epoch); 30 epochs, the first of them the warm-up.
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=2e-4, weight_decay=0))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[10, 20], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# The official batch: 1 GPU x 96 images (`--auto-scale-lr` scales from it).
auto_scale_lr = dict(base_batch_size=96)
