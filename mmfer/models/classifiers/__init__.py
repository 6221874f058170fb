# Copyright (c) OpenMMLab. All rights reserved.
from .fer_classifier import FERClassifier
from .mean_teacher_classifier import MeanTeacherClassifier

__all__ = ['FERClassifier', 'MeanTeacherClassifier']
