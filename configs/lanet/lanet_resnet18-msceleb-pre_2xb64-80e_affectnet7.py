# LA-Net, MS-Celeb-1M ResNet-18, AffectNet 7 classes (clean labels) with
# AffectNet's own 68 landmarks (iBUG layout, moved into the face crop). The
# official code supports RAF-DB only; this is its RAF-DB recipe with 68
# heatmaps instead of 19 and the progressively class-balanced sampler
# instead of the dataset base's 1/count sampler.
_base_ = [
    '../_base_/datasets/affectnet7.py', './_base_/lanet_schedule.py',
    './_base_/lanet_resnet18.py',
    './_base_/lanet_transforms.py'
]

model = dict(landmark_neck=dict(num_landmarks=68))
train_pipeline = [
    dict(type='LoadFERImage'),
    {{_base_.lanet_resize}},
    {{_base_.lanet_flip}},
    {{_base_.lanet_crop}},
    {{_base_.lanet_color_jitter}},
    {{_base_.lanet_random_erasing}},
    dict(type='LandmarkTargets', num_landmarks=68),
    dict(type='PackFERInputs'),
]
test_pipeline = {{_base_.lanet_test_pipeline}}
train_dataloader = dict(
    batch_size=64,
    drop_last=True,
    sampler={{_base_.lanet_sampler}},
    dataset=dict(with_landmarks=True, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
