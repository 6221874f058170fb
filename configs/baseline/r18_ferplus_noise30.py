# Baseline on FERPlus with 30% seeded symmetric label noise. Nobody ships
# FERPlus noise files, so the flips are drawn from noise_seed (identical on
# every machine and worker count); val/test stay clean.
_base_ = ['./r18_ferplus.py']

train_dataloader = dict(
    dataset=dict(noise_rate=0.3, noise_type='symmetric', noise_seed=0))
