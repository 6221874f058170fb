# Short name of lanet_resnet18-msceleb-pre_2xb64-80e_rafdb-noise20.py.
_base_ = ['./lanet_resnet18-msceleb-pre_2xb64-80e_rafdb-noise20.py']
