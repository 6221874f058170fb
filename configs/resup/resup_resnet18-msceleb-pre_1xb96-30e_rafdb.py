# ReSup on RAF-DB with the clean labels (ReSup's 0.0noise_train1.txt is
# RAF-DB's list_patition_label.txt, byte for byte).
_base_ = ['./resup_resnet18-msceleb-pre_1xb96-30e_rafdb-noise30.py']

train_dataloader = dict(dataset=dict(noise_file=None))
