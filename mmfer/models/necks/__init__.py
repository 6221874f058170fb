# Copyright (c) OpenMMLab. All rights reserved.
from .landmark_fpn import LandmarkFPN

__all__ = ['LandmarkFPN']
