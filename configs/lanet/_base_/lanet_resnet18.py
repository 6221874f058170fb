# LA-Net (Wu and Cui, ICCV 2023): the model of the official recipe
# (resnet.py, layers.py, loss.py) on the model base's face-recognition
# ResNet-18. Inherit it beside a dataset base, ./lanet_transforms.py and
# ./lanet_schedule.py; it brings the runtime, with MeanTeacherHook (the
# momentum encoder's update after every real optimiser step) after the
# runtime's hooks.
_base_ = [
    '../../_base_/models/resnet18-msceleb-pre_fer.py',
    '../../_base_/default_runtime.py'
]

# Normalisation of the official code ("calculated based on MS-Celeb 1M"),
# RGB, in 0-255 units.
lanet_mean = [138.006, 110.262, 96.7725]
lanet_std = [63.3675, 55.641, 52.683]

model = dict(
    type='LANetClassifier',
    # In the model, so that it replaces the dataset base's ImageNet one.
    data_preprocessor=dict(
        num_classes=7, mean=lanet_mean, std=lanet_std, to_rgb=True),
    # The model base's MS-Celeb-1M ResNet-18 with its four stage maps (the
    # FPN's input). Shared conv1 + layer1, then an expression tower and a
    # landmark tower (layer2-4 each); the face weights initialise the stem
    # and BOTH towers, as the official load_parameters copies layer2-4 into
    # both.
    backbone=dict(out_indices=(0, 1, 2, 3)),
    towers=dict(num_shared_stages=1),
    # the model base's pooling and linear head, its FC with PyTorch's
    # default initialisation, as the official fer_fc nn.Linear(512, 7)
    head=dict(init_cfg=None),
    # FPN to stride 4 with 64 channels (64 x the block expansion), heatmaps
    # of the 19 AFLW-19 landmarks
    landmark_neck=dict(
        type='LandmarkFPN', out_channels=64, num_landmarks=19),
    landmark_loss=dict(
        type='AdaptiveWingLoss', alpha=2.1, omega=14.0, epsilon=1.0,
        theta=0.5),
    # The official heatmap targets, rendered in the model from the points
    # of LandmarkTargets: maps at 1/4 of the input (the FPN's stride),
    # Gaussians of sigma 1.5 map pixels, weight 10 where the 3x3-dilated map
    # exceeds 0.2.
    heatmap=dict(stride=4, sigma=1.5, weight=10.0, threshold=0.2),
    label_distribution=dict(type='LabelDistributionEstimator', k=8),
    contrastive_loss=dict(
        type='ExpressionLandmarkContrastiveLoss', temperature=0.1),
    loss_weights=dict(landmark=1.0, kl=1.0, contrastive=0.1),
    history_momentum=0.9,
    momentum=0.999,
    queue_size=8192,
    confidence=0.7,
    # -idx for ambiguous samples, as the official code: the sample of index 0
    # then shares id 0 with class 0; 'unique' uses -(idx + 1).
    ambiguous_ids='official')

# The official code trains with SyncBN on 2 GPUs. tools/train.py drops it,
# with a warning, where there is no GPU (SyncBatchNorm needs one).
sync_bn = 'torch'

# The official code updates the momentum encoder at the start of each step,
# before the key forward; after each optimiser step is the same weights at
# every key forward (the first update, at step 1, would be a no-op).
custom_hooks = _base_.custom_hooks + [dict(type='MeanTeacherHook', interval=1)]
