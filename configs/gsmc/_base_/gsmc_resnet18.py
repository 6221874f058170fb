# GSMC (Huang, Liu, Zhou, CGI 2024): model and schedule of the official
# script (main.py). Inherit it beside a dataset base,
# ./gsmc_transforms.py and the runtime; add MeanTeacherHook to custom_hooks.

# Student: CE + 0.9 KL(teacher || student) + 0.2 flip attention
# consistency. Teacher: parameter EMA of the student with
# alpha = min(1 - 1/(step + 1), 0.999), fed the flipped image, train-mode
# BatchNorm.
model = dict(
    type='MeanTeacherClassifier',
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
        type='FERClassifier',
        # one backbone pass per view, as the official script, whose student
        # step this equals; 'joint' (one batch, joint BatchNorm statistics)
        # is a faster switch that changes the gradients.
        view_batching='separate',
        backbone=dict(
            type='ResNet',
            depth=18,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch',
            # The MS-Celeb-1M ResNet-18 of every mmfer RAF-DB config. GSMC
            # itself starts from DMUE's (mv_epoch_17.pt): convert it with
            # tools/model_converters/face_weights_to_mmpretrain.py and use
            # checkpoints/resnet18_dmue_mmpretrain.pth (docs/pretrained.md).
            init_cfg=dict(
                type='Pretrained',
                checkpoint='checkpoints/resnet18_msceleb_mmpretrain.pth')),
        neck=None,
        head=dict(
            type='GSMCHead',
            num_classes=7,
            in_channels=512,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            distill_loss=dict(
                type='KLDivergenceLoss', loss_weight=0.9, temperature=1.0),
            att_loss=dict(type='AttentionConsistencyLoss', loss_weight=0.2),
            detach_cam_weight=True,
            topk=(1, ))))

# Adam lr 1e-3, no weight decay, lr x0.1 every 10 epochs, 60 epochs.
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
param_scheduler = dict(type='StepLR', by_epoch=True, step_size=10, gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
