# Copyright (c) OpenMMLab. All rights reserved.
"""Pictures of models and runs: activation maps and figures."""
from .activation_maps import (ActivationMapper, flip_pair, import_grad_cam,
                              plain_cam_problem, predicting_networks)
from .drawing import (cam_panels, new_figure, normalise_maps, overlay_cam,
                      save_cam_figure, save_confusion_png, save_png)

__all__ = [
    'ActivationMapper', 'flip_pair', 'import_grad_cam', 'plain_cam_problem',
    'predicting_networks', 'cam_panels', 'new_figure', 'normalise_maps',
    'overlay_cam', 'save_cam_figure', 'save_confusion_png', 'save_png'
]
