# FERPlus (FER2013 faces + Microsoft's votes) at 112x112, 8 classes,
# majority labels. data_root is relative to the mmfer repo root; see
# docs/datasets.md for the files. The 48x48 greyscale faces are decoded from
# fer2013.csv once per process and LoadFERImage makes them 3-channel BGR.
_base_ = ['./fer_common.py']

dataset_type = 'FERPlusDataset'
data_root = 'data/ferplus'
num_classes = 8

data_preprocessor = dict(num_classes=num_classes)
# cache_images: with img_source='folders' the 48x48 PNGs are decoded once
# into memory (28,709 train images 190 MiB as 3-channel uint8); with 'csv'
# the faces are in memory already and the switch does nothing.

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        num_classes=num_classes,
        label_mode='majority',
        vote_source='fer2013new',
        img_source='csv',
        cache_images=True))
# FERPlus has a real validation split (PublicTest); the test split is
# PrivateTest. Both always use majority labels (the FERPlus protocol).
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        num_classes=num_classes,
        vote_source='fer2013new',
        img_source='csv',
        cache_images=True))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        num_classes=num_classes,
        vote_source='fer2013new',
        img_source='csv',
        cache_images=True))
