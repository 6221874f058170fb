# Copyright (c) OpenMMLab. All rights reserved.
from .train_eval import train_and_test

__all__ = ['train_and_test']
