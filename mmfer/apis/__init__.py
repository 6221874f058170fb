# Copyright (c) OpenMMLab. All rights reserved.
"""Training, model loading and in-the-wild inference.

Each name imports its module on first use, so that ``from mmfer.apis
import build_model`` does not import the face detectors and MTCNN.
"""
from ..utils.lazy_exports import lazy_exports

# name -> the module defining it
_MODULES = {
    'train_and_test': 'train_eval',
    'FERInferencer': 'fer_inferencer',
    'FRAMINGS': 'fer_inferencer',
    'FACE_DETECTORS': 'face_detectors',
    'FaceDetections': 'face_detectors',
    'LBPCascadeFaceDetector': 'face_detectors',
    'MontageTileDetector': 'face_detectors',
    'build_face_detector': 'face_detectors',
    'MTCNNFaceDetector': 'mtcnn_detector',
    'build_model': 'model_loading',
    'load_weights': 'model_loading',
}

__all__ = list(_MODULES)
__getattr__ = lazy_exports(__name__, _MODULES)
