# LA-Net x EAC: LA-Net's system, losses, schedule, sampler and augmentation
# on RAF-DB with EAC's 30% noise file, with EAC's head on the expression
# tower: cross-entropy plus 5 x the flip attention consistency between each
# augmented image and its mirror (EAC's clean-label views; LANetClassifier
# runs the mirror through the expression tower). The label-distribution KL
# and the contrastive loss use the original view's logits and features. A
# combination of two seed methods: no paper reports it.
_base_ = [
    './lanet_resnet18-msceleb-pre_2xb64-80e_rafdb-noise30.py',
    '../eac/_base_/eac_head.py'
]

model = dict(
    neck=None,  # the head pools itself: it needs the feature map
    # replaces LA-Net's linear head and its PyTorch-default initialisation
    head=dict(_base_.eac_head, _delete_=True))
