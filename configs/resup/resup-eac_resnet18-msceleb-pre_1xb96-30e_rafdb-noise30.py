# ReSup x EAC: ReSup's two networks, noise model, swap and agreement, each
# network an EAC classifier (no pooling neck; EACHead: CE on view 1, which
# ReSup weights per sample, + 5 x flip attention consistency, unweighted)
# fed EAC's noisy-label views (view 1 = Gaussian noise + erasing, view 2 =
# the flipped raw image with its own erasing). ReSup's schedule and
# initialisation; RAF-DB with EAC's 30% noise file. A combination of two
# seed methods: no paper reports it.
_base_ = [
    './resup_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py',
    '../eac/_base_/eac_head.py'
]

# Replaces the base's networks (a list is replaced, not merged), each on its
# own weights as in the base; the other CoTeachingClassifier arguments are
# the base's.
resup_eac_network = dict(
    # one backbone pass per view, as EAC's official step
    view_batching='separate',
    neck=None,  # the head pools itself: it needs the feature map
    head=_base_.eac_head)
model = dict(networks=[
    dict(resup_eac_network, backbone=_base_.resup_backbones[0]),
    dict(resup_eac_network, backbone=_base_.resup_backbones[1]),
])

train_pipeline = {{_base_.eac_noisy_train_pipeline}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
