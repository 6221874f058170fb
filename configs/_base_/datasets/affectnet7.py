# AffectNet-7 (expression codes 0..6) at 112x112 from the official CSV
# lists, faces cropped to the annotated box. There is no public test set:
# the test split is the official validation set (3,500 images). AffectNet
# is very imbalanced (Happy 134k, Disgust 4k), so training draws samples
# with probability 1/class count, as every published AffectNet result does.
_base_ = ['./fer_common.py']

dataset_type = 'AffectNetDataset'
data_root = 'data/affectnet'
num_classes = 7

data_preprocessor = dict(num_classes=num_classes)
# No image cache (cache_images stays False): the ~287k training images come
# in many sizes before the face crop, while the cache holds one size, and
# even at 112x112 they would take ~10 GiB per process.

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        num_classes=num_classes,
        layout='csv',
        crop_face=True,
        face_margin=0.0),
    sampler=dict(_delete_=True, type='ClassBalancedSampler'))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='test',
        num_classes=num_classes,
        layout='csv',
        crop_face=True,
        face_margin=0.0))
test_dataloader = val_dataloader
