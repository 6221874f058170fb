# Short name of resup_resnet18-msceleb-pre_1xb96-30e_rafdb-noise20.py.
_base_ = ['./resup_resnet18-msceleb-pre_1xb96-30e_rafdb-noise20.py']
