# RAF-DB basic at 112x112. data_root is relative to the mmfer repo root,
# like mmpretrain's data/ (see docs/datasets.md for the layout).
_base_ = ['./fer_common.py']

dataset_type = 'RAFDBDataset'
data_root = 'data/rafdb'

data_preprocessor = dict(num_classes=7)

# Every aligned face is 100x100: the splits are decoded once into memory
# (12,271 train images 351 MiB, 3,068 test images 88 MiB as uint8), which
# dataloader workers share, and no JPEG is decoded again. Same pixels as
# reading the files; set cache_images=False to save the memory.
train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, cache_images=True))
# RAF-DB has no validation split: the (always clean) test split is
# evaluated every epoch, and the last epoch is the reported result.
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        cache_images=True))
test_dataloader = val_dataloader
