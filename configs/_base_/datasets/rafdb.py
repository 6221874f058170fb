# RAF-DB basic at 112x112. data_root is relative to the mmfer repo root,
# like mmpretrain's data/ (see docs/datasets.md for the layout).
_base_ = ['./fer_common.py']

dataset_type = 'RAFDBDataset'
data_root = 'data/rafdb'

data_preprocessor = dict(num_classes=7)

train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
# RAF-DB has no validation split: the (always clean) test split is
# evaluated every epoch, and the last epoch is the reported result.
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
