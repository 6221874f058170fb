# Backbone mixing: the EAC head on an ImageNet-1k ConvNeXt-T from
# mmpretrain's model zoo, otherwise the ResNet-18 RAF-DB 30% recipe (its
# lr was tuned for ResNet-18; tune it for a new backbone). Any mmpretrain
# backbone works if it returns its last feature map (N, C, H, W):
#   ResNet/MobileNetV3/EfficientNet: as is (out_indices = last stage);
#   ConvNeXt: gap_before_final_norm=False;
#   VisionTransformer/DeiT: out_type='featmap'.
_base_ = ['./eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvNeXt',
        arch='tiny',
        gap_before_final_norm=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'convnext/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth',
            prefix='backbone.')),
    head=dict(in_channels=768))
