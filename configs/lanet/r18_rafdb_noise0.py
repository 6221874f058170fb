# Short name of lanet_resnet18-msceleb-pre_2xb64-80e_rafdb.py.
_base_ = ['./lanet_resnet18-msceleb-pre_2xb64-80e_rafdb.py']
