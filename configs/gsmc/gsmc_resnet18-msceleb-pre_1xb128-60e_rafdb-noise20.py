# GSMC on RAF-DB with EAC's public 20% noise file.
_base_ = ['./gsmc_resnet18-msceleb-pre_1xb128-60e_rafdb-noise30.py']

train_dataloader = dict(dataset=dict(noise_file='EmoLabel/noise02.txt'))
