# ReSup's augmentations (official main.py), at 224 px, shared by every
# dataset. All names start with `resup_` so that this file can be inherited
# beside any dataset base. The random erasing is EAC's (the same torchvision
# call), inherited from EAC's transforms rather than copied.
_base_ = ['../../eac/_base_/eac_transforms.py']

resup_img_size = 224
resup_resize = dict(type='Resize', scale=(resup_img_size, resup_img_size))
# RandomApply([RandomCrop(224, padding=32)], p=0.2). The official crop runs
# on the PIL image, before ToTensor and Normalize, so its zero padding is a
# black border (pixel value 0), not the mean colour.
resup_random_crop = dict(
    type='mmcv.RandomApply',
    prob=0.2,
    transforms=[
        dict(
            type='RandomCrop',
            crop_size=resup_img_size,
            padding=32,
            pad_val=0,
            padding_mode='constant'),
    ])
# torchvision RandomErasing(scale=(0.02, 0.25)): p 0.5, ratio (0.3, 3.3),
# value 0 after normalisation, i.e. the ImageNet mean in BGR.
resup_random_erasing = {{_base_.eac_random_erasing}}

# Resize -> horizontal flip p 0.5 -> the random crop with p 0.2 ->
# (normalisation, in the data preprocessor) -> random erasing. Erasing with
# the mean colour before normalising equals erasing with 0 after it.
resup_train_pipeline = [
    dict(type='LoadFERImage'),
    resup_resize,
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    resup_random_crop,
    resup_random_erasing,
    dict(type='PackFERInputs'),
]
resup_test_pipeline = [
    dict(type='LoadFERImage'),
    resup_resize,
    dict(type='PackFERInputs'),
]
