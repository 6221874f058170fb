# ./resnet18_fer.py started from MS-Celeb-1M face-recognition weights
# (RUL/dacl), converted and checked by
# tools/model_converters/face_weights_to_mmpretrain.py (docs/pretrained.md):
# the backbone of every RAF-DB, FERPlus and AffectNet recipe.
_base_ = ['./resnet18_fer.py']

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet18_msceleb_mmpretrain.pth')))
