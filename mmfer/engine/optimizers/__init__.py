# Copyright (c) OpenMMLab. All rights reserved.
from .fer_amp_optim_wrapper import FERAmpOptimWrapper

__all__ = ['FERAmpOptimWrapper']
