# Copyright (c) OpenMMLab. All rights reserved.
from .co_teaching_classifier import CoTeachingClassifier
from .fer_classifier import FERClassifier
from .lanet_classifier import LANetClassifier
from .mean_teacher_classifier import MeanTeacherClassifier

__all__ = [
    'CoTeachingClassifier', 'FERClassifier', 'LANetClassifier',
    'MeanTeacherClassifier'
]
