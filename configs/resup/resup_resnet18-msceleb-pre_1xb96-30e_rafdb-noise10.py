# ReSup on RAF-DB with EAC's public 10% noise file.
_base_ = ['./resup_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py']

train_dataloader = dict(dataset=dict(noise_file='EmoLabel/noise01.txt'))
