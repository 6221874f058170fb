# Copyright (c) OpenMMLab. All rights reserved.
from .resnet_caffe_stem import FaceResNet

__all__ = ['FaceResNet']
