# Short name of eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py.
_base_ = ['./eac_resnet18-msceleb-pre_1xb32-60e_rafdb-noise30.py']
