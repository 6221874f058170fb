# LA-Net on RAF-DB with LA-Net's own 30% noise: the official code ships no
# noise file but draws symmetric noise with Python's RNG seeded 0 in its
# class order (noise_type='lanet' reproduces that draw label for label).
_base_ = ['./lanet_resnet18-msceleb-pre_2xb64-80e_rafdb-noise30.py']

train_dataloader = dict(
    dataset=dict(
        noise_file=None, noise_rate=0.3, noise_type='lanet', noise_seed=0))
