# ReSup (Zhang et al., arXiv 2305.17895): the model and the noise-modelling
# hook of the official recipe (model.py, utils.py) on the model base's
# ResNet-18. Inherit it beside a dataset base, ./resup_transforms.py and
# ./resup_schedule.py; it brings the runtime, with ReSupHook after the
# runtime's hooks.
_base_ = [
    '../../_base_/models/resnet18_fer.py', '../../_base_/default_runtime.py',
    './resup_hook.py'
]

# Each network's backbone weights, merged into the system's backbone (the
# model base's ResNet-18).
# Network 0: MS-Celeb-1M face-recognition weights, the file ReSup names
# (SCN/RAN's ijba_res18_naive.pth.tar), converted and checked by
# tools/model_converters/face_weights_to_mmpretrain.py. The official loader
# loads nothing from this file and so starts from ImageNet: see README.md.
# For that behaviour, use network 1's checkpoint here.
# Network 1: ImageNet weights, as the official resnet18(True): torchvision's
# resnet18-f37072fd.pth (IMAGENET1K_V1), converted by the same tool
# (docs/pretrained.md).
resup_backbones = [
    dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet18_scn_mmpretrain.pth')),
    dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/resnet18_imagenet_mmpretrain.pth')),
]

# Two independent ResNet-18 classifiers trained by one optimiser. After the
# warm-up, network 0's cross-entropy is weighted per sample by network 1's
# probability that the label is clean and vice versa (the swap), plus
# 5 x MSE(softmax0, softmax1). ReSupHook fits the clean probabilities.
# Each network: the model base's pooling and linear head, the head's FC
# keeping PyTorch's default initialisation (the official nn.Linear(512, 7)).
resup_network = dict(
    neck=_base_.model.neck, head=dict(_base_.model.head, init_cfg=None))
model = dict(
    _delete_=True,
    type='CoTeachingClassifier',
    backbone=_base_.model.backbone,
    networks=[
        dict(resup_network, backbone=resup_backbones[0]),
        dict(resup_network, backbone=resup_backbones[1]),
    ],
    agreement_weight=5.0,  # 5 x mean over classes of (p0 - p1)^2
    # the code maps similarities >= 1 to 1 - 10e-4 and <= 0 to 10e-4 and
    # keeps every other value, before the fit and the lookup
    similarity_bounds=(1e-3, 1 - 1e-3),
    similarity_rule='official',
    weight_clamp=(1e-4, 1 - 1e-4),
    lookup_bins=100,
    predict_with='net0',  # the official code reports and saves network 0
    check_pretrained=True)
custom_hooks = _base_.custom_hooks + [_base_.resup_hook]
