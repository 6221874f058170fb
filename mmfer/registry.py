# Copyright (c) OpenMMLab. All rights reserved.
"""mmfer's own registries, for components no mmpretrain registry fits.

Everything else registers into mmpretrain's registries (see
:mod:`mmfer.utils.registration`). These are children of mmpretrain's, in
the ``mmfer`` scope, so that ``mmfer.DeviceRandomFlip`` also resolves from
mmpretrain's ``BATCH_AUGMENTS``.
"""
from mmengine.registry import Registry, build_from_cfg
from mmpretrain.registry import BATCH_AUGMENTS, MODELS


def _build_in_mmfer_scope(cfg: dict, registry: Registry, default_args=None):
    """Build ``cfg`` from ``registry`` whatever the default scope is.

    Under a Runner's ``default_scope='mmpretrain'``, mmengine would build
    from mmpretrain's registry of the same tree, which does not hold
    mmfer's entries.
    """
    return build_from_cfg({
        '_scope_': 'mmfer',
        **cfg
    }, registry, default_args)


#: Batch augments that run on the device, each sample drawn from its own
#: ``aug_seed`` (``mmfer.models.utils.device_augments``). mmpretrain's
#: ``BATCH_AUGMENTS`` holds Mixup/CutMix, which mix samples and so are no
#: device augments.
DEVICE_AUGMENTS = Registry(
    'device augment',
    parent=BATCH_AUGMENTS,
    scope='mmfer',
    build_func=_build_in_mmfer_scope,
    locations=['mmfer.models.utils.device_augments'])

#: Face detectors of the inference API (``mmfer.apis``), built by name from
#: ``FERInferencer``'s ``detector`` argument; a child of ``MODELS`` as they
#: are networks or image operators, not trainable models.
FACE_DETECTORS = Registry(
    'face detector',
    parent=MODELS,
    scope='mmfer',
    locations=['mmfer.apis.face_detectors', 'mmfer.apis.mtcnn_detector'])
