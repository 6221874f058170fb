# EAC on RAF-DB with EAC's public 20% noise file (noisy-label path).
_base_ = ['./eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py']

train_dataloader = dict(dataset=dict(noise_file='EmoLabel/noise02.txt'))
