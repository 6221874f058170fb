# EAC's head (official src/model.py, src/loss.py): CE on view 1 + 5 x MSE
# between its class activation maps (all classes, detached classifier
# weight) and the mirrored maps of view 2. The head pools the feature map
# itself (use no neck). Named `eac_head` so that this file can be inherited
# beside any model, e.g. to put EAC's head into a system (ReSup, LA-Net).
eac_head = dict(
    type='EACHead',
    num_classes=7,
    loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    att_loss=dict(type='AttentionConsistencyLoss', loss_weight=5.0),
    detach_cam_weight=True,
    topk=(1, ))
