# The baseline demo (r18_synthfer_noise30.py) with its augmentation on the
# model's device: the random horizontal flip (p 0.5) moved from the
# data-loading workers into FERDataPreprocessor, so the workers only decode,
# resize and collate uint8 images, and the flip runs on the whole batch
# where the model runs (the GPU in practice). Same semantics: each image is
# mirrored exactly with probability 0.5, drawn per sample from the aug_seed
# that DrawDeviceAugmentSeed adds in the sample's seeded pipeline run, so
# the draw is still the same with 0 or 2 workers, on any rank and after a
# resume (the draws themselves differ from the CPU config's).
_base_ = ['./r18_synthfer_noise30.py']

train_dataloader = dict(
    dataset=dict(pipeline={{_base_.device_aug_train_pipeline}}))

data_preprocessor = dict(
    type='FERDataPreprocessor',
    device_augments=[dict(type='DeviceRandomFlip', prob=0.5)])
