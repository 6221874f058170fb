# EAC's demo (r18_synthfer_noise30.py) with its views made on the model's
# device: the loader ships one resized uint8 image per sample instead of
# two augmented ones, and FERDataPreprocessor makes both views from it
# where the model runs (the GPU in practice), with EAC's semantics:
#   view 1 = Gaussian noise (p 0.5, variance 30, in pixel levels, clipped
#            and truncated like RandomGaussianNoise), then random erasing;
#   view 2 = the mirror of the raw image, then its own random erasing.
# The erasing is torchvision's RandomErasing(p 0.5, scale (0.02, 0.25),
# ratio (0.3, 3.3), value 0 after normalisation), which EAC's official code
# runs; DeviceRandomErasing's default fill, the ImageNet mean in BGR, is
# that 0. Two small differences from the CPU config: the noise is added
# after the loader's resize (a no-op at SynthFER's 64 px), and an oversized
# erasing box is redrawn, as in torchvision, rather than clipped.
# Each sample's draws come from the aug_seed that DrawDeviceAugmentSeed adds
# in the sample's seeded pipeline run, so they are the same with 0 or 2
# workers, on any rank and after a resume.
_base_ = ['./r18_synthfer_noise30.py']

train_dataloader = dict(
    dataset=dict(pipeline={{_base_.device_aug_train_pipeline}}))

device_erasing = dict(
    type='DeviceRandomErasing', prob=0.5, scale=(0.02, 0.25), ratio=(0.3, 3.3))
data_preprocessor = dict(
    type='FERDataPreprocessor',
    device_augments=dict(views=[
        [dict(type='DeviceGaussianNoise', prob=0.5, var=30.0), device_erasing],
        [dict(type='DeviceRandomFlip', prob=1.0), device_erasing],
    ]))
