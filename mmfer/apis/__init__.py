# Copyright (c) OpenMMLab. All rights reserved.
from .face_detectors import (FACE_DETECTORS, FaceDetections,
                             LBPCascadeFaceDetector, MontageTileDetector,
                             build_face_detector)
from .fer_inferencer import FRAMINGS, FERInferencer
from .model_loading import build_model, load_weights
from .mtcnn_detector import MTCNNFaceDetector
from .train_eval import train_and_test

__all__ = [
    'train_and_test', 'FERInferencer', 'FRAMINGS', 'FACE_DETECTORS',
    'FaceDetections', 'LBPCascadeFaceDetector', 'MontageTileDetector',
    'MTCNNFaceDetector', 'build_face_detector', 'build_model', 'load_weights'
]
