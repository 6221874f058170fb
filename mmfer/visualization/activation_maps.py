# Copyright (c) OpenMMLab. All rights reserved.
"""Class activation maps of the prediction of any mmfer system."""
import importlib
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger

from mmfer.models.utils import class_activation_maps, flip_width

METHODS = ('auto', 'cam', 'gradcam')
GRAD_CAM_PACKAGE = 'grad-cam'
GRAD_CAM_MODULE = 'pytorch_grad_cam'
# A plain CAM is exact when the logits are the pooled maps plus the bias;
# float32 sums over the channels differ from the head's by about this much.
_CAM_TOLERANCE = 1e-4


def predicting_networks(model: nn.Module) -> List[nn.Module]:
    """The networks whose outputs make a system's prediction.

    GSMC's :class:`MeanTeacherClassifier` predicts with its ``predictor``
    (the student by default), ReSup's :class:`CoTeachingClassifier` with the
    network its ``predict_with`` names, or both for ``'ensemble'``; any
    other model (``ImageClassifier``, :class:`FERClassifier`,
    :class:`LANetClassifier`) predicts with itself.

    Args:
        model (nn.Module): The system.

    Returns:
        list[nn.Module]: One network, or two for ReSup's ensemble.
    """
    if hasattr(model, 'predictor'):
        return [model.predictor]
    networks = getattr(model, 'networks', None)
    if networks is not None:
        if model.predict_with == 'ensemble':
            return list(networks)
        return [networks[int(model.predict_with[-1])]]
    return [model]


def logits_of(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The logits a system predicts from, ``(N, K)``.

    Args:
        model (nn.Module): The system.
        inputs (torch.Tensor): Preprocessed images, ``(N, C, H, W)``.

    Returns:
        torch.Tensor: Its ``mode='tensor'`` output (for ReSup's ensemble the
        log of the mean softmax, whose softmax is the ensemble's score).
    """
    return model(inputs, mode='tensor')


def plain_cam_problem(model: nn.Module,
                      inputs: torch.Tensor) -> Optional[str]:
    """Why a plain CAM does not explain ``model``'s logits, or ``None``.

    A plain CAM applies when one network predicts, its backbone's last
    output is an ``(N, C, H, W)`` map and the logits are a linear layer
    ``head.fc`` of that map's global average. The last condition is
    checked on ``inputs`` rather than inferred from the module types, so
    any neck or head that computes exactly that qualifies.

    Args:
        model (nn.Module): The system, in eval mode.
        inputs (torch.Tensor): Preprocessed images.

    Returns:
        str | None: The reason, or ``None`` when a plain CAM applies.
    """
    networks = predicting_networks(model)
    if len(networks) != 1:
        return ('the prediction averages the softmax of '
                f'{len(networks)} networks')
    net = networks[0]
    fc = getattr(getattr(net, 'head', None), 'fc', None)
    if not isinstance(fc, nn.Linear):
        return (f'the head {type(getattr(net, "head", None)).__name__} has '
                'no linear classifier `fc`')
    with torch.no_grad():
        feat = last_feature_map(net, inputs)
        if feat.dim() != 4 or feat.size(1) != fc.in_features:
            return (f'the backbone\'s last output has shape '
                    f'{tuple(feat.shape)}, not (N, {fc.in_features}, H, W)')
        logits = logits_of(model, inputs)
        pooled = fc(feat.mean(dim=(2, 3)))
    scale = max(1.0, float(logits.abs().max()))
    if not torch.allclose(pooled, logits, atol=_CAM_TOLERANCE * scale,
                          rtol=0):
        return ('the logits are not the linear classifier of the globally '
                'averaged last feature map (a non-linear neck or head)')
    return None


def last_feature_map(net: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The backbone's last output, before any neck.

    Args:
        net (nn.Module): One network (``ImageClassifier``-like, or
            :class:`LANetClassifier`, whose ``'backbone'`` stage is the
            expression tower).
        inputs (torch.Tensor): Preprocessed images.

    Returns:
        torch.Tensor: The last stage's output.
    """
    return net.extract_feat(inputs, stage='backbone')[-1]


def tokens_to_map(x: torch.Tensor) -> torch.Tensor:
    """Lay ``(N, L, C)`` transformer tokens out as an ``(N, C, s, s)`` map.

    The leading ``L - s * s`` tokens (class and distillation tokens) are
    dropped, ``s`` being the largest square grid that fits. Other shapes
    pass through unchanged.

    Args:
        x (torch.Tensor): Activations or their gradients.

    Returns:
        torch.Tensor: A 4-D map.
    """
    if x.dim() != 3:
        return x
    n, length, channels = x.shape
    side = math.isqrt(length)
    patches = x[:, length - side * side:]
    return patches.reshape(n, side, side, channels).permute(0, 3, 1, 2)


class _Logits(nn.Module):
    """``model(x, mode='tensor')`` as a plain module, for Grad-CAM."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model, x)


def last_spatial_layer(model: nn.Module, inputs: torch.Tensor,
                       network: nn.Module) -> str:
    """Name (in ``model``) of the last layer of ``network``'s backbone that
    runs once per forward pass and outputs an ``(N, C, H, W)`` map with
    ``H * W > 1``: the last convolutional stage of a CNN.

    Args:
        model (nn.Module): The system.
        inputs (torch.Tensor): Preprocessed images.
        network (nn.Module): One of its predicting networks.

    Returns:
        str: The layer's name, for ``model.get_submodule``.
    """
    scope = getattr(network, 'backbone', network)
    names = {id(m): n for n, m in model.named_modules()}
    calls, finished = {}, []

    def record(module, _, output):
        calls[id(module)] = calls.get(id(module), 0) + 1
        if torch.is_tensor(output) and output.dim() == 4 and \
                output.shape[2] * output.shape[3] > 1:
            finished.append(id(module))

    handles = [m.register_forward_hook(record) for m in scope.modules()]
    try:
        with torch.no_grad():
            logits_of(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    once = [key for key in finished if calls[key] == 1 and key in names]
    if not once:
        raise ValueError(
            f'No layer of {type(scope).__name__} outputs an (N, C, H, W) '
            'feature map once per forward pass; give the Grad-CAM layer '
            'with --target-layer NAME (a module of the model, e.g. '
            'backbone.layers.11.ln1 for a ViT, whose (N, L, C) tokens are '
            'laid out on their square grid).')
    return names[once[-1]]


def import_grad_cam():
    """Import the optional ``pytorch_grad_cam`` module.

    Returns:
        module: ``pytorch_grad_cam``.

    Raises:
        ImportError: Naming the package to install.
    """
    try:
        return importlib.import_module(GRAD_CAM_MODULE)
    except ImportError as err:
        raise ImportError(
            f'Grad-CAM needs the optional package `{GRAD_CAM_PACKAGE}` '
            f'(import name {GRAD_CAM_MODULE}): pip install '
            f'{GRAD_CAM_PACKAGE} ({err}).') from err


class ActivationMapper:
    """Class activation maps of a system's prediction, for any mmfer
    system: ``ImageClassifier``/:class:`FERClassifier` (linear head or
    :class:`EACHead`), GSMC's student, ReSup's predicting network(s) and
    LA-Net's expression tower.

    ``method='cam'`` is the plain CAM of EAC and GSMC,
    ``sum_c F[c, h, w] * fc.weight[k, c]`` on the backbone's last feature
    map ``F``, at that map's resolution, without ReLU or normalisation.
    ``'gradcam'`` is Grad-CAM from the optional ``grad-cam`` package, at
    the input resolution, ReLU'd and scaled to [0, 1] per image.
    ``'auto'`` takes the plain CAM wherever it is exact (see
    :func:`plain_cam_problem`), Grad-CAM elsewhere.

    Args:
        model (nn.Module): The system, in eval mode.
        method (str): ``'auto'``, ``'cam'`` or ``'gradcam'``.
            Defaults to ``'auto'``.
        target_layers (Sequence[str], optional): Grad-CAM layers (names of
            modules of ``model``). Defaults to the last feature-map layer of
            each predicting network's backbone.
    """

    def __init__(self,
                 model: nn.Module,
                 method: str = 'auto',
                 target_layers: Optional[Sequence[str]] = None) -> None:
        if method not in METHODS:
            raise ValueError(f'method={method!r} must be one of {METHODS}.')
        self.model = model
        self.method = method
        self.target_layers = list(target_layers or [])
        self._resolved: Optional[str] = None

    @property
    def method_used(self) -> Optional[str]:
        """str | None: ``'cam'`` or ``'gradcam'`` once maps were made."""
        return self._resolved

    def resolve(self, inputs: torch.Tensor) -> str:
        """Choose the method for this model (once) on example inputs.

        Args:
            inputs (torch.Tensor): Preprocessed images.

        Returns:
            str: ``'cam'`` or ``'gradcam'``.
        """
        if self._resolved is not None:
            return self._resolved
        logger = MMLogger.get_current_instance()
        problem = None if self.method == 'gradcam' else plain_cam_problem(
            self.model, inputs)
        if problem is None and self.method != 'gradcam':
            self._resolved = 'cam'
        elif self.method == 'cam':
            raise ValueError(
                f'A plain CAM does not apply to this model: {problem}. Use '
                '--method gradcam (or auto).')
        else:
            import_grad_cam()
            if not self.target_layers:
                self.target_layers = [
                    last_spatial_layer(self.model, inputs, net)
                    for net in predicting_networks(self.model)
                ]
            if problem is not None:
                logger.info(f'Plain CAM does not apply ({problem}); '
                            'using Grad-CAM.')
            logger.info('Grad-CAM on layer(s) ' +
                        ', '.join(self.target_layers))
            self._resolved = 'gradcam'
        return self._resolved

    def __call__(self, inputs: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
        """The maps of the ``targets`` classes.

        Args:
            inputs (torch.Tensor): Preprocessed images, ``(N, C, H, W)``.
            targets (torch.Tensor): One class index per image, ``(N, )``.

        Returns:
            torch.Tensor: ``(N, h, w)`` maps (see the class docstring for
            their resolution and scale).
        """
        if self.resolve(inputs) == 'cam':
            return self._plain_cam(inputs, targets)
        return self._grad_cam(inputs, targets)

    def _plain_cam(self, inputs: torch.Tensor,
                   targets: torch.Tensor) -> torch.Tensor:
        net = predicting_networks(self.model)[0]
        with torch.no_grad():
            maps = class_activation_maps(
                last_feature_map(net, inputs), net.head.fc.weight)
        return maps[torch.arange(maps.size(0)), targets]

    def _grad_cam(self, inputs: torch.Tensor,
                  targets: torch.Tensor) -> torch.Tensor:
        grad_cam = import_grad_cam()
        target_type = grad_cam.utils.model_targets.ClassifierOutputTarget
        layers = [self.model.get_submodule(n) for n in self.target_layers]
        cam = grad_cam.GradCAM(
            _Logits(self.model), layers, reshape_transform=tokens_to_map)
        try:
            maps = cam(inputs, [target_type(int(k)) for k in targets])
        finally:
            cam.activations_and_grads.release()
        return torch.from_numpy(maps).float()


def flip_pair(mapper: ActivationMapper, inputs: torch.Tensor,
              target: Optional[int] = None
              ) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Maps of an image and of its mirror, the latter mirrored back.

    Both maps are of the same class: ``target``, or the class the model
    predicts for the image, so that EAC's flip consistency (equal maps)
    can be seen.

    Args:
        mapper (ActivationMapper): The map maker.
        inputs (torch.Tensor): One preprocessed image, ``(1, C, H, W)``.
        target (int, optional): The class; ``None`` (the default) for the
            prediction.

    Returns:
        tuple: ``maps`` ``(2, h, w)`` (the image's and the mirror's,
        mirrored back), ``scores`` ``(2, K)`` (softmax of each view),
        the class index.
    """
    views = torch.cat([inputs, flip_width(inputs)])
    with torch.no_grad():
        scores = logits_of(mapper.model, views).softmax(dim=1)
    cls = int(scores[0].argmax()) if target is None else int(target)
    maps = mapper(views, torch.tensor([cls, cls]))
    back = flip_width(maps[1:, None])[:, 0]
    return torch.stack([maps[0], back[0]]), scores, cls


def normalise_maps(maps: torch.Tensor, size: Sequence[int]) -> np.ndarray:
    """Upsample maps to ``size`` and scale **each** to [0, 1] for display.

    Scaling the maps of a figure together leaves a map whose values span a
    small part of the joint range one flat colour (the image's and the
    mirror's CAMs of a small input often differ in range); each map is
    scaled by its own minimum and maximum instead, so that every panel
    shows where its map is high. Compare the maps' shapes, not their
    colours across panels.

    Args:
        maps (torch.Tensor): ``(N, h, w)`` maps.
        size (Sequence[int]): ``(H, W)`` of the image.

    Returns:
        np.ndarray: ``(N, H, W)`` in [0, 1] (all zero for a constant map).
    """
    up = F.interpolate(maps[:, None].float(), size=tuple(size),
                       mode='bilinear', align_corners=False)[:, 0]
    up = up - up.amin(dim=(1, 2), keepdim=True)
    peak = up.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, up / peak.clamp(min=1e-12), up).numpy()
