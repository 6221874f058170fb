# Short name of gsmc_resnet18-msceleb-pre_1xb128-60e_ferplus.py.
_base_ = ['./gsmc_resnet18-msceleb-pre_1xb128-60e_ferplus.py']
