# EAC on RAF-DB with the clean labels: the official clean-label path (view
# 2 is the exact mirror of view 1, made in the batch by FERClassifier).
_base_ = ['./eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py']

train_pipeline = {{_base_.eac_clean_train_pipeline}}
train_dataloader = dict(
    dataset=dict(noise_file=None, pipeline=train_pipeline))
