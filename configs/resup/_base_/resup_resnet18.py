# ReSup (Zhang et al., arXiv 2305.17895): the model and the noise-modelling
# hook of the official recipe (model.py, utils.py). Inherit it beside a
# dataset base, ./resup_transforms.py, ./resup_schedule.py and the runtime,
# and set `custom_hooks = {{_base_.resup_custom_hooks}}` (./resup_hook.py;
# the runtime's custom_hooks and that list cannot both be bases).
_base_ = ['./resup_hook.py']

# Two independent ResNet-18 classifiers trained by one optimiser. After the
# warm-up, network 0's cross-entropy is weighted per sample by network 1's
# probability that the label is clean and vice versa (the swap), plus
# 5 x MSE(softmax0, softmax1). ReSupHook fits the clean probabilities.
model = dict(
    type='CoTeachingClassifier',
    networks=[
        # Network 0: MS-Celeb-1M face-recognition weights, the file ReSup
        # names (SCN/RAN's ijba_res18_naive.pth.tar), converted and checked
        # by tools/model_converters/face_weights_to_mmpretrain.py. The
        # official loader loads nothing from this file and so starts from
        # ImageNet: see README.md. For that behaviour, use network 1's
        # checkpoint here.
        dict(
            type='ImageClassifier',
            backbone=dict(
                type='ResNet',
                depth=18,
                num_stages=4,
                out_indices=(3, ),
                style='pytorch',
                init_cfg=dict(
                    type='Pretrained',
                    checkpoint='checkpoints/resnet18_scn_mmpretrain.pth')),
            neck=dict(type='GlobalAveragePooling'),
            # nn.Linear(512, 7) with PyTorch's default initialisation
            head=dict(
                type='LinearClsHead',
                num_classes=7,
                in_channels=512,
                init_cfg=None,
                loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
                topk=(1, ))),
        # Network 1: ImageNet weights, as the official resnet18(True):
        # torchvision's resnet18-f37072fd.pth (IMAGENET1K_V1), converted by
        # the same tool (docs/pretrained.md).
        dict(
            type='ImageClassifier',
            backbone=dict(
                type='ResNet',
                depth=18,
                num_stages=4,
                out_indices=(3, ),
                style='pytorch',
                init_cfg=dict(
                    type='Pretrained',
                    checkpoint='checkpoints/'
                    'resnet18_imagenet_mmpretrain.pth')),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead',
                num_classes=7,
                in_channels=512,
                init_cfg=None,
                loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
                topk=(1, ))),
    ],
    agreement_weight=5.0,  # 5 x mean over classes of (p0 - p1)^2
    similarity_clamp=(1e-3, 1 - 1e-3),  # the code writes 10e-4
    weight_clamp=(1e-4, 1 - 1e-4),
    lookup_bins=100,
    predict_with='net0',  # the official code reports and saves network 0
    check_pretrained=True)
