# EAC's augmentations and views (official src/main.py and src/dataset.py),
# at 224 px, shared by every dataset. All names start with `eac_` so that
# this file can be inherited beside any dataset base.

eac_img_size = 224
eac_resize = dict(type='Resize', scale=(eac_img_size, eac_img_size))
# torchvision RandomErasing(scale=(0.02, 0.25)) with its defaults: p 0.5,
# ratio (0.3, 3.3), value 0 after normalisation, i.e. the ImageNet mean,
# written in BGR because images stay BGR until the data preprocessor.
eac_random_erasing = dict(
    type='RandomErasing',
    erase_prob=0.5,
    min_area_ratio=0.02,
    max_area_ratio=0.25,
    aspect_range=(0.3, 3.3),
    mode='const',
    fill_color=(103.53, 116.28, 123.675))
# EAC's add_g: on the raw image of view 1, with p 0.5, variance 30.
eac_gaussian_noise = dict(type='RandomGaussianNoise', prob=0.5, var=30.0)

# Noisy-label path ([EAC] src/dataset.py): view 1 = T(add_g(raw)), view 2 =
# T(hflip(raw)) with its own erasing draw and no Gaussian noise.
# No random crop or flip on view 1.
eac_noisy_train_pipeline = [
    dict(type='LoadFERImage'),
    dict(
        type='MultiView',
        num_views=[1, 1],
        transforms=[
            [eac_gaussian_noise, eac_resize, eac_random_erasing],
            [
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
                eac_resize, eac_random_erasing
            ],
        ]),
    dict(type='PackFERInputs'),
]
# Clean-label path: view 2 is the exact mirror of view 1 (same noise, same
# erased box). One view: FERClassifier mirrors the batch itself.
eac_clean_train_pipeline = [
    dict(type='LoadFERImage'),
    eac_gaussian_noise,
    eac_resize,
    eac_random_erasing,
    dict(type='PackFERInputs'),
]
eac_test_pipeline = [
    dict(type='LoadFERImage'),
    eac_resize,
    dict(type='PackFERInputs'),
]
