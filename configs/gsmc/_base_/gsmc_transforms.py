# GSMC's augmentations (official main.py), at 224 px. The second view is
# the mirror of the augmented batch, made by FERClassifier. All names start
# with `gsmc_` so that this file can be inherited beside any dataset base.

gsmc_img_size = 224
gsmc_resize = dict(type='Resize', scale=(gsmc_img_size, gsmc_img_size))
# torchvision RandomErasing(scale=(0.02, 0.25)): p 0.5, ratio (0.3, 3.3),
# value 0 after normalisation = the ImageNet mean (BGR here).
gsmc_random_erasing = dict(
    type='RandomErasing',
    erase_prob=0.5,
    min_area_ratio=0.02,
    max_area_ratio=0.25,
    aspect_range=(0.3, 3.3),
    mode='const',
    fill_color=(103.53, 116.28, 123.675))
# RandomApply([RandomRotation(20), RandomCrop(224, padding=32)], p=0.2):
# a uniform angle in [-20, 20] (nearest, black fill), then a crop of the
# zero-padded image; both together with probability 0.2.
gsmc_rotate_crop = dict(
    type='mmcv.RandomApply',
    prob=0.2,
    transforms=[
        dict(
            type='Rotate',
            magnitude_range=(0, 20),
            magnitude_std='inf',
            random_negative_prob=0.5,
            pad_val=0,
            interpolation='nearest',
            prob=1.0),
        dict(
            type='RandomCrop',
            crop_size=gsmc_img_size,
            padding=32,
            pad_val=0),
    ])
gsmc_train_pipeline = [
    dict(type='LoadFERImage'),
    gsmc_resize,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    gsmc_rotate_crop,
    gsmc_random_erasing,
    dict(type='PackFERInputs'),
]
gsmc_test_pipeline = [
    dict(type='LoadFERImage'),
    gsmc_resize,
    dict(type='PackFERInputs'),
]
