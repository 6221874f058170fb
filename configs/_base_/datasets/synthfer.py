# SynthFER, mmfer's embedded procedural dataset, in RAF-DB basic layout,
# at the size of the `make demo` recipe (tools/demo.py generates it so):
#   python tools/dataset_converters/make_synthfer.py --out data/synthfer \
#       --num-train 2000 --num-test 700 --size 64
# The image cache of rafdb.py stays on (2,000 train images, 23 MiB).
_base_ = ['./rafdb.py']

data_root = 'data/synthfer'
img_size = 64
train_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackFERInputs'),
]
test_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackFERInputs'),
]
# The train pipeline of configs that augment on the model's device
# (FERDataPreprocessor(device_augments=...)): workers only load and resize,
# and draw the per-sample seed the device augments use.
device_aug_train_pipeline = [
    dict(type='LoadFERImage'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='DrawDeviceAugmentSeed'),
    dict(type='PackFERInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    dataset=dict(
        type='SynthFERDataset', data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        type='SynthFERDataset', data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
