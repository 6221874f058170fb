# Copyright (c) OpenMMLab. All rights reserved.
from .expression_landmark_backbone import ExpressionLandmarkBackbone
from .resnet_caffe_stem import FaceResNet

__all__ = ['ExpressionLandmarkBackbone', 'FaceResNet']
