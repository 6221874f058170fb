# Backbone mixing: the EAC head on an ImageNet-1k ConvNeXt-T from
# mmpretrain's model zoo, otherwise the ResNet-18 RAF-DB 30% recipe (its
# lr was tuned for ResNet-18; tune it for a new backbone). Any mmpretrain
# backbone that returns feature maps (N, C, H, W) works with this one line:
# the head measures C itself, and ConvNeXt (gap_before_final_norm=False)
# and VisionTransformer/DeiT (out_type='featmap') are given their
# feature-map settings unless the config sets them.
_base_ = ['./eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvNeXt',
        arch='tiny',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'convnext/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth',
            prefix='backbone.')))
