# The EAC recipe for ResNet-18 (official src/main.py, with the ResNet-18 lr
# of the authors' README FAQ): Adam, lr 2e-4, L2 weight decay 1e-4,
# lr x0.9 after every epoch, 60 epochs.
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=2e-4, weight_decay=1e-4))
param_scheduler = dict(type='ExponentialLR', gamma=0.9, by_epoch=True)
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# Base learning rate for automatic scaling: 1 GPU x 64 images.
auto_scale_lr = dict(base_batch_size=64)
