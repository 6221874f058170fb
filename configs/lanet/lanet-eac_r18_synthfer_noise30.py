# LA-Net x EAC on SynthFER with 30% seeded symmetric noise, from scratch:
# LA-Net's system, losses, augmentation and sampler (./r18_synthfer_noise30.py)
# with EAC's head on the expression tower: cross-entropy plus the flip
# attention consistency between each image and its mirror, which
# LANetClassifier runs through the expression tower. The attention weight
# is the EAC SynthFER recipe's 1 (configs/eac/r18_synthfer_noise30.py says
# why). A combination of two seed methods: no paper reports it.
_base_ = ['./r18_synthfer_noise30.py', '../eac/_base_/eac_head.py']

model = dict(
    neck=None,  # the head pools itself: it needs the feature map
    head=dict(
        _base_.eac_head,
        _delete_=True,
        att_loss=dict(type='AttentionConsistencyLoss', loss_weight=1.0)))
