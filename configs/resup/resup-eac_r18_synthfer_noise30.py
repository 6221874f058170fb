# ReSup x EAC on SynthFER with 30% seeded symmetric noise, from scratch:
# ReSup's two networks, noise model, swap and agreement, each network the
# EAC SynthFER recipe's classifier (no pooling neck, EACHead with attention
# weight 1, one backbone pass per view) fed its two-view pipeline. Data,
# noise, optimiser, schedule, epochs and batch are the baseline demo
# config's, like every SynthFER recipe.
_base_ = ['../eac/r18_synthfer_noise30.py']

# Both networks on the EAC recipe's backbone; ReSup's values for the other
# CoTeachingClassifier arguments.
resup_network = dict(
    view_batching='separate', neck=None, head=_base_.model.head)
model = dict(
    _delete_=True,
    type='CoTeachingClassifier',
    backbone=_base_.model.backbone,
    networks=[resup_network, resup_network])

# ReSup's one warm-up epoch assumes pretrained networks, which are good
# after it. From scratch, one epoch leaves them near chance (23% top-1 on
# SynthFER): the first mixtures then separate the majority class from the
# rest, the swapped weights keep only its samples, and both networks end up
# predicting that one class. EAC networks, which by design do not fit the
# noisy labels early, are still unconfident on clean samples after ReSup's
# 3 from-scratch epochs: the Beta mixture then splits "confident" from
# "unconfident" instead of clean from noisy (55-70% of the samples rated
# noisy, AUROC 0.78 falling to 0.55 on seed 2). After 6 epochs the mixture
# separates the two (AUROC 0.92) and ReSup-EAC beats the baseline on every
# seed (docs/benchmark.md: 3 vs 5 vs 6 epochs measured).
custom_hooks = _base_.custom_hooks + [dict(type='ReSupHook', warmup_epochs=6)]
