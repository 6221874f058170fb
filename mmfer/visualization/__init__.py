# Copyright (c) OpenMMLab. All rights reserved.
"""Pictures of models and runs: activation maps and figures.

Each name imports its module on first use: drawing needs matplotlib only,
activation maps torch and the models.
"""
from ..utils.lazy_exports import lazy_exports

# name -> the module defining it
_MODULES = {
    'ActivationMapper': 'activation_maps',
    'flip_pair': 'activation_maps',
    'import_grad_cam': 'activation_maps',
    'normalise_maps': 'activation_maps',
    'plain_cam_problem': 'activation_maps',
    'predicting_networks': 'activation_maps',
    'cam_panels': 'drawing',
    'new_figure': 'drawing',
    'overlay_cam': 'drawing',
    'save_cam_figure': 'drawing',
    'save_confusion_png': 'drawing',
    'save_png': 'drawing',
}

__all__ = list(_MODULES)
__getattr__ = lazy_exports(__name__, _MODULES)
