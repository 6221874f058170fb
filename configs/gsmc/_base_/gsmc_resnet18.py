# GSMC (Huang, Liu, Zhou, CGI 2024): model, schedule and hooks of the
# official script (main.py) on the model base's ResNet-18. Inherit it beside
# a dataset base and ./gsmc_transforms.py; it brings the runtime, with
# MeanTeacherHook after the runtime's hooks.
_base_ = [
    '../../_base_/models/resnet18-msceleb-pre_fer.py',
    '../../_base_/default_runtime.py'
]

# Student: CE + 0.9 KL(teacher || student) + 0.2 flip attention
# consistency. Teacher: parameter EMA of the student with
# alpha = min(1 - 1/(step + 1), 0.999), fed the flipped image, train-mode
# BatchNorm.
model = dict(
    _delete_=True,
    type='MeanTeacherClassifier',
    # The model base's MS-Celeb-1M ResNet-18 of every mmfer RAF-DB config.
    # GSMC itself starts from DMUE's (mv_epoch_17.pt): convert it with
    # tools/model_converters/face_weights_to_mmpretrain.py and use
    # checkpoints/resnet18_dmue_mmpretrain.pth (docs/pretrained.md).
    backbone=_base_.model.backbone,
    # source weight max(0.001, 1 / (1 + step)) = 1 - alpha
    ema=dict(
        type='MomentumAnnealingEMA',
        momentum=0.001,
        gamma=1,
        update_buffers=False),
    teacher_view=1,  # the flipped image
    teacher_mode='train',  # GSMC never calls teacher.eval()
    predict_with='student',
    student=dict(
        # one backbone pass per view, as the official script, whose student
        # step this equals; 'joint' (one batch, joint BatchNorm statistics)
        # is a faster switch that changes the gradients.
        view_batching='separate',
        neck=None,
        head=dict(
            type='GSMCHead',
            num_classes=7,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            distill_loss=dict(
                type='KLDivergenceLoss', loss_weight=0.9, temperature=1.0),
            att_loss=dict(type='AttentionConsistencyLoss', loss_weight=0.2),
            detach_cam_weight=True,
            topk=(1, ))))
# The teacher's EMA after every optimiser step.
custom_hooks = _base_.custom_hooks + [dict(type='MeanTeacherHook', interval=1)]

# Adam lr 1e-3, no weight decay, lr x0.1 every 10 epochs, 60 epochs.
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
param_scheduler = dict(type='StepLR', by_epoch=True, step_size=10, gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
randomness = dict(seed=42)  # the official seed
