# Baseline: ResNet-18 (MS-Celeb-1M pre-trained) + cross-entropy on RAF-DB
# with EAC's public 30% symmetric noise file (EmoLabel/noise03.txt).
_base_ = [
    '../_base_/datasets/rafdb.py',
    '../_base_/models/resnet18-msceleb-pre_fer.py',
    '../_base_/schedules/adam_60e.py', '../_base_/default_runtime.py'
]

train_dataloader = dict(dataset=dict(noise_file='EmoLabel/noise03.txt'))
