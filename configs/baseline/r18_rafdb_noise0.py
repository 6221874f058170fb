# Baseline on RAF-DB with the clean labels.
_base_ = ['./r18_rafdb_noise30.py']

train_dataloader = dict(dataset=dict(noise_file=None))
