# LA-Net on RAF-DB with EAC's public 10% noise file (noise01.txt);
# otherwise as the 30% noise config.
_base_ = ['./lanet_resnet18-msceleb-pre_2xb64-80e_rafdb-noise30.py']

train_dataloader = dict(dataset=dict(noise_file='EmoLabel/noise01.txt'))
