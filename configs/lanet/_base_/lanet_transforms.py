# LA-Net's augmentation (official dataloader.py, augment.py) at 224 px, with
# the landmarks moved with the image. The model renders them as stride-4
# heatmap targets (its `heatmap` argument): a data worker then sends 19
# points per sample, not two 19 x 56 x 56 float32 maps (476 KB). All names
# start with `lanet_` so that this file can be inherited beside any dataset
# base.

lanet_img_size = 224
lanet_num_landmarks = 19
# The official code resizes with PIL's default, bicubic.
lanet_resize = dict(
    type='ResizeWithLandmarks',
    scale=(lanet_img_size, lanet_img_size),
    interpolation='bicubic',
    backend='pillow')
# torchvision RandomErasing(p=0.2, scale=(0.02, 0.2), ratio=(0.3, 3.3)) after
# normalisation fills 0, i.e. the mean colour (BGR here, before to_rgb).
lanet_random_erasing = dict(
    type='RandomErasing',
    erase_prob=0.2,
    min_area_ratio=0.02,
    max_area_ratio=0.2,
    aspect_range=(0.3, 3.3),
    mode='const',
    fill_color=(96.7725, 110.262, 138.006))
# The official flip mirrors x but does not swap left/right points, so
# heatmap channel 0 is the image-left brow end either way;
# permute_landmarks=True keeps each channel on one anatomical point.
lanet_flip = dict(
    type='RandomFlipWithLandmarks', prob=0.5, permute_landmarks=False)
# Official hand-written crop: 10 tries, centre fallback, landmarks truncated
# to integers.
lanet_crop = dict(
    type='RandomResizedCropWithLandmarks',
    size=lanet_img_size,
    scale=(0.75, 1.0),
    ratio=(3. / 4., 4. / 3.),
    interpolation='bicubic',
    backend='pillow',
    truncate_landmarks=True)
lanet_color_jitter = dict(
    type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4)
# Checks the points' frame and count; a sample without landmarks gets zero
# points and has_landmarks=False (masked out of the landmark loss).
lanet_landmark_targets = dict(
    type='LandmarkTargets', num_landmarks=lanet_num_landmarks)
lanet_train_pipeline = [
    dict(type='LoadFERImage'),
    lanet_resize,
    lanet_flip,
    lanet_crop,
    lanet_color_jitter,
    lanet_random_erasing,
    lanet_landmark_targets,
    dict(type='PackFERInputs'),
]
lanet_test_pipeline = [
    dict(type='LoadFERImage'),
    lanet_resize,
    dict(type='PackFERInputs'),
]
