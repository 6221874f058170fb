# LA-Net on clean RAF-DB (the paper's Table 3 setting); otherwise as the
# 30% noise config.
_base_ = ['./lanet_resnet18-msceleb-pre_2xb64-80e_rafdb-noise30.py']

train_dataloader = dict(dataset=dict(noise_file=None))
