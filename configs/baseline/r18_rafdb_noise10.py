# Baseline on RAF-DB with EAC's public 10% noise file.
_base_ = ['./r18_rafdb_noise30.py']

train_dataloader = dict(dataset=dict(noise_file='EmoLabel/noise01.txt'))
