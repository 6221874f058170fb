# Baseline on RAF-DB with EAC's public 20% noise file.
_base_ = ['./r18_rafdb_noise30.py']

train_dataloader = dict(dataset=dict(noise_file='EmoLabel/noise02.txt'))
