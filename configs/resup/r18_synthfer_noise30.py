# ReSup on SynthFER with 30% seeded symmetric noise, from scratch: the
# `make demo` recipe. Data, noise, optimiser, schedule, epochs and batch are
# the baseline demo config's (not ReSup's Adam 2e-4 / MultiStepLR recipe),
# so the two runs differ only in the method: two copies of the baseline's
# network (each with its own random initialisation), ReSup's noise model,
# swapped weights and agreement term.
_base_ = ['../baseline/r18_synthfer_noise30.py']

# Both networks on the baseline's backbone; the other CoTeachingClassifier
# arguments keep ReSup's values (agreement 5, similarity clamp 1e-3, weight
# clamp 1e-4, 100 bins, predict with network 0).
resup_network = dict(neck=_base_.model.neck, head=_base_.model.head)
model = dict(
    _delete_=True,
    type='CoTeachingClassifier',
    backbone=_base_.model.backbone,
    networks=[resup_network, resup_network])

# ReSup's one warm-up epoch assumes pretrained networks, which are good
# after it. From scratch, one epoch leaves them near chance (23% top-1 on
# SynthFER): the first mixtures then separate the majority class from the
# rest, the swapped weights keep only its samples, and both networks end up
# predicting that one class (measured with the EAC networks). Three epochs,
# after which the baseline is at ~65%, avoid that.
custom_hooks = _base_.custom_hooks + [dict(type='ReSupHook', warmup_epochs=3)]
