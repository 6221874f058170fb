# GSMC on RAF-DB with the clean labels (what the released script trains
# on; the paper's 90.54% does not say its noise rate).
_base_ = ['./gsmc_resnet18-msceleb-pre_1xb128-60e_rafdb-noise30.py']

train_dataloader = dict(dataset=dict(noise_file=None))
