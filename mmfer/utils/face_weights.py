# Copyright (c) OpenMMLab. All rights reserved.
"""Face-recognition ResNet weights as mmpretrain ``ResNet`` checkpoints.

The noisy-FER literature starts from face-recognition weights that exist
only as Google-Drive files, in four key layouts (``docs/pretrained.md``):

- ``torchvision``: ``resnet18_msceleb.pth`` (dacl, RUL, DAN, EAC-R18); no
  prefix; drops ``fc.*``.
- ``scn``: ``ijba_res18_naive.pth.tar`` (SCN, RAN); strips ``module.``;
  drops ``module.fc.*`` (87,020-way) and ``module.feature.*`` (512->256).
- ``dmue``: ``mv_epoch_17.pt`` (DMUE, GSMC); strips ``feat_net.``; drops
  ``loss_layer.*`` (MV-softmax, 512 x 86876) and ``feat_net.fc.*``.
- ``vggface2``: ``resnet50_ft_weight.pkl`` (VGGFace2, EAC-R50), a pickle of
  numpy arrays; no prefix; drops ``fc.*`` (8631-way) and ``classifier.*``.

After the prefix is stripped, the backbone names of the first three are
torchvision's, which are also mmpretrain's ``ResNet`` names. The VGGFace2
pickle is assumed to use the module names of ``cydonia999/VGGFace2-pytorch``
(EAC's official code loads it with a strict ``load_state_dict`` into its
torchvision-named ``resnet.py``), which are torchvision's too. Files that
use the original Caffe layer names (``conv1/7x7_s2``,
``conv2_1_1x1_reduce/bn``, ...) are also accepted; their mapping is the
explicit table built by :func:`vggface2_caffe_name_table`.

Conversion is strict, unlike the loaders of the official scripts (ReSup's
loop copies ``module.*`` keys into a model without that prefix and loads
nothing, silently): every mmpretrain key must be found with the right shape
and every non-head key of the source must be used, or
:class:`FaceWeightsError` names the offending keys.

Its command line is ``tools/model_converters/face_weights_to_mmpretrain.py``;
training only loads the converted checkpoints, never the face-recognition
files, so nothing else in mmfer imports this module.
"""
import codecs
import hashlib
import io
import logging
import os.path as osp
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log

#: Layout names accepted by :func:`convert_face_weights`.
LAYOUTS = ('torchvision', 'scn', 'dmue', 'vggface2')

#: Layout -> (prefix stripped from backbone keys, raw key prefixes of the
#: heads that are dropped). A head prefix matches the key as stored.
LAYOUT_SPECS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    'torchvision': ('', ('fc.', )),
    'scn': ('module.', ('module.fc.', 'module.feature.')),
    # GSMC skips fc.* after stripping feat_net.; loss_layer is the
    # MV-softmax head (512 x 86876).
    'dmue': ('feat_net.', ('loss_layer.', 'feat_net.fc.')),
    'vggface2': ('', ('fc.', 'classifier.')),
}

#: Where each layout comes from and how to run it, for reports and docs.
LAYOUT_NOTES: Dict[str, str] = {
    'torchvision':
    'torchvision stem and blocks: use dict(type="ResNet", depth=D).',
    'scn':
    'torchvision stem and blocks: use dict(type="ResNet", depth=D); '
    'the 512->256 "feature" layer and the 87,020-way fc are dropped.',
    'dmue':
    'DMUE trained this ResNet-18 with no ReLU after the stem BN and '
    'MaxPool2d(2, 2) on mean=std=0.5 input; GSMC runs it with the '
    'torchvision stem and ImageNet normalisation, and so does '
    'dict(type="ResNet", depth=18). For the exact DMUE stem use '
    'dict(type="FaceResNet", depth=18, stem_pool="dmue", stem_act=False).',
    'vggface2':
    'Caffe-style ResNet (stride in the first 1x1 conv, max-pool padding=0 '
    'ceil_mode=True): use dict(type="FaceResNet", depth=D, style="caffe", '
    'stem_pool="caffe") to reproduce it; it was trained on BGR, '
    'mean-subtracted 0-255 input (EAC fine-tunes it on RGB ImageNet-'
    'normalised input anyway).',
}

# Keys named in an error message, per kind, before "... and N more".
_MAX_NAMED = 12


class FaceWeightsError(ValueError):
    """A face-weight checkpoint that cannot be converted as asked."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that refers to something other than numpy arrays."""


# ---------------------------------------------------------------------------
# Reading the source files
# ---------------------------------------------------------------------------
def _numpy_globals() -> Dict[Tuple[str, str], Any]:
    """The only globals a pickle of numpy arrays needs, by pickled name.

    Both ``numpy.core`` (numpy < 2 and Python 2 pickles) and ``numpy._core``
    (numpy >= 2) spellings resolve to the objects of the installed numpy;
    they are looked up here, never imported by the name in the file.
    """
    core = getattr(np, '_core', None) or np.core
    allowed: Dict[Tuple[str, str], Any] = {
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('collections', 'OrderedDict'): OrderedDict,
        # protocol-2 pickles written by Python 3 store bytes this way.
        ('_codecs', 'encode'): codecs.encode,
    }
    for pkg in ('numpy.core', 'numpy._core'):
        allowed[(f'{pkg}.multiarray', '_reconstruct')] = \
            core.multiarray._reconstruct
        allowed[(f'{pkg}.multiarray', 'scalar')] = core.multiarray.scalar
        # protocol-5 pickles (out-of-band buffers)
        allowed[(f'{pkg}.numeric', '_frombuffer')] = core.numeric._frombuffer
    # numpy >= 1.25 names dtype classes ``numpy.dtypes.Float32DType``, ...
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in dir(dtypes):
            obj = getattr(dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                allowed[('numpy.dtypes', name)] = obj
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves numpy array globals and nothing else."""

    def __init__(self, file, path: str, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._path = path
        self._allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f'{self._path}: refusing to unpickle the global '
                f'"{module}.{name}": a face-weight pickle may only hold '
                'numpy arrays in dicts, lists and tuples. The file is not '
                'the expected weight pickle (or was tampered with); do not '
                'load it with plain pickle.') from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f'{self._path}: refusing a persistent id ({pid!r}): this is a '
            'torch checkpoint, not a pickle of numpy arrays; load it with '
            'torch.load(weights_only=True) instead.')


def load_pickle_restricted(path: str) -> Any:
    """Load a pickle of numpy arrays in plain containers, and nothing else.

    The VGGFace2 ``resnet50_ft_weight.pkl`` is a (Python 2) pickle of
    ``{name: np.ndarray}``. Plain :func:`pickle.load` would run any callable
    a tampered file names; this loader only resolves the globals needed to
    rebuild numpy arrays and dtypes (and ``OrderedDict``). Python 2 strings
    are decoded as latin-1, as numpy requires for its array buffers.

    Args:
        path (str): The pickle file.

    Returns:
        Any: The unpickled object (dicts, lists, tuples, str, numbers and
        numpy arrays only).

    Raises:
        UnsafePickleError: If the pickle refers to any other global.
    """
    with open(path, 'rb') as f:
        return _NumpyOnlyUnpickler(f, path, encoding='latin1').load()


def load_face_checkpoint(path: str, allow_unsafe: bool = False) -> Any:
    """Load a face-weight file without executing code from it.

    ``.pkl``/``.pickle`` files go through :func:`load_pickle_restricted`;
    anything else through ``torch.load(weights_only=True)`` and, if torch
    rejects it and it is not a zip checkpoint, the restricted pickle loader
    (a numpy pickle with another extension).

    Args:
        path (str): Source file.
        allow_unsafe (bool): Fully unpickle a torch file that is not
            weights-only. Only for files you trust. Defaults to False.

    Returns:
        Any: The loaded object.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        FaceWeightsError: If the file is neither weights-only nor a numpy
            pickle and ``allow_unsafe`` is False.
        UnsafePickleError: If a ``.pkl`` file refers to non-numpy globals.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    if osp.splitext(path)[1].lower() in ('.pkl', '.pickle'):
        return load_pickle_restricted(path)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises several types here
        reason = str(err).strip().splitlines()[0] if str(err) else repr(err)
    if not zipfile.is_zipfile(path):
        try:
            return load_pickle_restricted(path)
        except Exception:
            pass  # report torch's reason below: it is the likelier format
    if allow_unsafe:
        print_log(
            f'{path} is not weights-only ({reason}); unpickling it fully '
            'because allow_unsafe=True.',
            logger='current',
            level=logging.WARNING)
        return torch.load(path, map_location='cpu', weights_only=False)
    raise FaceWeightsError(
        f'{path} is neither a weights-only torch checkpoint nor a pickle of '
        f'numpy arrays ({reason}). If you trust the file, re-run with '
        '--unsafe-load (allow_unsafe=True).')


# ---------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------
def unwrap_state_dict(checkpoint: Any) -> Mapping[str, Any]:
    """Return the state dict inside a checkpoint.

    Args:
        checkpoint (Any): A state dict, or a dict holding one under
            ``'state_dict'`` (dacl, SCN, DMUE and mmengine checkpoints).

    Returns:
        Mapping[str, Any]: The state dict.

    Raises:
        FaceWeightsError: If ``checkpoint`` is not a mapping.
    """
    if not isinstance(checkpoint, Mapping):
        raise FaceWeightsError(
            f'expected a state dict (a mapping of names to arrays), got '
            f'{type(checkpoint).__name__}')
    inner = checkpoint.get('state_dict')
    if isinstance(inner, Mapping):
        return inner
    return checkpoint


def _is_caffe_name(key: str) -> bool:
    return key.startswith(('conv1/7x7_s2', 'conv1_7x7_s2'))


def detect_layout(checkpoint: Any) -> str:
    """Tell which face-weight layout a checkpoint uses.

    Args:
        checkpoint (Any): A state dict or a ``{'state_dict': ...}`` wrapper.

    Returns:
        str: One of :data:`LAYOUTS`.

    Raises:
        FaceWeightsError: If no known layout matches; the message shows some
            of the keys.
    """
    state = unwrap_state_dict(checkpoint)
    keys = [k for k in state if isinstance(k, str)]
    if any(k.startswith('feat_net.') for k in keys):
        return 'dmue'
    if any(k.startswith('module.') for k in keys):
        return 'scn'
    if any(_is_caffe_name(k) for k in keys):
        return 'vggface2'
    if 'conv1.weight' in state and any(
            k.startswith('layer1.0.') for k in keys):
        if any(isinstance(v, np.ndarray) for v in state.values()):
            return 'vggface2'
        return 'torchvision'
    shown = ', '.join(sorted(map(str, state))[:_MAX_NAMED]) or '(none)'
    raise FaceWeightsError(
        f'unknown face-weight layout: none of {", ".join(LAYOUTS)} matches '
        f'a checkpoint with {len(state)} keys ({shown}'
        f'{", ..." if len(state) > _MAX_NAMED else ""}). Expected '
        'torchvision ResNet names (conv1.weight, layer1.0.conv1.weight, '
        '...), optionally prefixed by "module." (SCN) or "feat_net." '
        '(DMUE), or VGGFace2 Caffe names (conv1/7x7_s2, ...).')


def vggface2_caffe_name_table() -> Dict[str, str]:
    """Map VGGFace2 Caffe layer names to mmpretrain module names.

    This is the layer naming of the VGGFace2 ``resnet50_ft`` Caffe model
    (``conv1/7x7_s2``, ``conv2_1_1x1_reduce/bn``, ...), with ``/`` read as
    ``_`` as in the MatConvNet/PyTorch conversions. Stage ``convS`` is
    ``layer{S-1}`` and block ``_B`` is index ``B-1``. Parameter suffixes
    (``.weight``, ``.bias``, ``.running_mean``, ``.running_var``) are kept.
    It covers up to ResNet-152; edit it here if a file uses other names.

    Returns:
        Dict[str, str]: Caffe module name -> mmpretrain module name.
    """
    table = {'conv1_7x7_s2': 'conv1', 'conv1_7x7_s2_bn': 'bn1'}
    parts = (('1x1_reduce', 'conv1', 'bn1'), ('3x3', 'conv2', 'bn2'),
             ('1x1_increase', 'conv3', 'bn3'),
             ('1x1_proj', 'downsample.0', 'downsample.1'))
    for stage, num_blocks in enumerate((3, 8, 36, 3), start=2):
        for block in range(1, num_blocks + 1):
            src, dst = f'conv{stage}_{block}', f'layer{stage - 1}.{block - 1}'
            for caffe, conv, bn in parts:
                if caffe == '1x1_proj' and block != 1:
                    continue
                table[f'{src}_{caffe}'] = f'{dst}.{conv}'
                table[f'{src}_{caffe}_bn'] = f'{dst}.{bn}'
    return table


def _rename_caffe(key: str, table: Dict[str, str]) -> Optional[str]:
    module, _, param = key.replace('/', '_').rpartition('.')
    target = table.get(module)
    return f'{target}.{param}' if target is not None else None


# ---------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------
@dataclass
class ConversionReport:
    """What :func:`convert_face_weights` did.

    Args:
        layout (str): The layout converted from.
        depth (int): The ResNet depth converted to.
        num_mapped (int): Backbone tensors taken from the source.
        num_expected (int): Tensors in mmpretrain's ``ResNet(depth)``.
        dropped (List[str]): Source keys dropped as heads.
        filled (List[str]): ``num_batches_tracked`` buffers the source did
            not have (pre-0.4.1 torch or Caffe files), set to 0.
        caffe_names (bool): Whether VGGFace2 Caffe layer names were mapped.
        backbone (dict): Backbone config that runs the weights like the
            source model (``init_cfg`` still to be added).
        note (str): Stem and input caveats of the layout.
    """

    layout: str
    depth: int
    num_mapped: int
    num_expected: int
    dropped: List[str] = field(default_factory=list)
    filled: List[str] = field(default_factory=list)
    caffe_names: bool = False
    backbone: dict = field(default_factory=dict)
    note: str = ''

    def summary(self) -> str:
        """One line: ``mapped N/M backbone tensors from layout 'x'; ...``."""
        line = (f'mapped {self.num_mapped}/{self.num_expected} backbone '
                f"tensors from layout '{self.layout}' (ResNet-{self.depth}"
                f"{', Caffe names' if self.caffe_names else ''}); dropped: "
                f"{', '.join(self.dropped) or 'nothing'}")
        if self.filled:
            line += (f'; set {len(self.filled)} missing num_batches_tracked '
                     'buffers to 0')
        return line

    def to_dict(self) -> dict:
        """Plain-container copy, safe for weights-only checkpoints."""
        return asdict(self)


@lru_cache(maxsize=None)
def _expected_shapes(depth: int) -> Tuple[Tuple[str, Tuple[int, ...]], ...]:
    """Keys and shapes of mmpretrain's ``ResNet(depth)``, in module order.

    Taken from a real model rather than written out, so that the check
    follows mmpretrain; the stem and ``style`` options do not change them.
    """
    from mmpretrain.models import ResNet
    model = ResNet(depth=depth, init_cfg=None)
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def infer_depth(keys: Sequence[str]) -> Optional[int]:
    """Infer the ResNet depth from torchvision/mmpretrain key names.

    Args:
        keys (Sequence[str]): Backbone keys (prefix already stripped).

    Returns:
        int, optional: 18, 34, 50, 101 or 152, or None if the blocks per
        stage match none of them.
    """
    blocks: Dict[int, set] = {1: set(), 2: set(), 3: set(), 4: set()}
    bottleneck = False
    for key in keys:
        match = re.match(r'layer([1-4])\.(\d+)\.', key)
        if match:
            blocks[int(match.group(1))].add(int(match.group(2)))
            bottleneck |= key.startswith(f'{match.group(0)}conv3.')
    counts = tuple(len(blocks[i]) for i in range(1, 5))
    from mmpretrain.models.backbones.resnet import Bottleneck, ResNet
    for depth, (block, stages) in ResNet.arch_settings.items():
        if (block is Bottleneck) == bottleneck and tuple(stages) == counts:
            return depth
    return None


def _to_tensor(key: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        # copy: the array may be read-only or share a pickle's buffer
        return torch.from_numpy(np.array(value, copy=True))
    if isinstance(value, (int, float, np.number)):
        return torch.tensor(value)
    raise FaceWeightsError(
        f'{key}: expected a tensor or numpy array, got '
        f'{type(value).__name__}')


def _name_keys(kind: str, keys: Sequence[str]) -> str:
    shown = ', '.join(keys[:_MAX_NAMED])
    more = len(keys) - _MAX_NAMED
    return f'  {kind} ({len(keys)}): {shown}' + (
        f', ... and {more} more' if more > 0 else '')


def _backbone_cfg(layout: str, depth: int) -> dict:
    if layout == 'vggface2':
        return dict(
            type='FaceResNet', depth=depth, style='caffe', stem_pool='caffe')
    return dict(type='ResNet', depth=depth)


def convert_face_weights(
    checkpoint: Any,
    depth: Optional[int] = None,
    layout: str = 'auto',
    extra_heads: Sequence[str] = (),
    logger: Optional[Union[MMLogger, str]] = 'current',
) -> Tuple['OrderedDict[str, torch.Tensor]', ConversionReport]:
    """Convert face-recognition ResNet weights to mmpretrain ``ResNet`` keys.

    Args:
        checkpoint (Any): The loaded source: a state dict or a
            ``{'state_dict': ...}`` wrapper, with tensors or numpy arrays.
        depth (int, optional): ResNet depth. Inferred from the keys if None.
            Defaults to None.
        layout (str): One of :data:`LAYOUTS`, or ``'auto'`` to use
            :func:`detect_layout`. Defaults to ``'auto'``.
        extra_heads (Sequence[str]): More raw key prefixes to drop as heads,
            for files with other non-backbone layers. Defaults to ().
        logger (MMLogger | str, optional): Where the one-line report goes
            (see :func:`mmengine.logging.print_log`); ``'silent'`` for
            none. Defaults to ``'current'``.

    Returns:
        tuple[OrderedDict, ConversionReport]: The state dict, with exactly
        the keys, shapes and order of ``mmpretrain.models.ResNet(depth)``,
        and the report.

    Raises:
        FaceWeightsError: If the layout is unknown, the depth cannot be
            inferred, or any backbone key is missing, unexpected or of the
            wrong shape. The message names the layout and the keys.
    """
    state = unwrap_state_dict(checkpoint)
    if layout == 'auto':
        layout = detect_layout(state)
    if layout not in LAYOUT_SPECS:
        raise FaceWeightsError(
            f'unknown layout {layout!r}; choose one of {", ".join(LAYOUTS)} '
            "or 'auto'")
    prefix, heads = LAYOUT_SPECS[layout]
    heads = tuple(heads) + tuple(extra_heads)
    caffe_names = layout == 'vggface2' and any(
        _is_caffe_name(str(k)) for k in state)
    table = vggface2_caffe_name_table() if caffe_names else {}

    converted: Dict[str, torch.Tensor] = {}
    source_of: Dict[str, str] = {}
    dropped: List[str] = []
    unexpected: List[str] = []
    for raw_key, value in state.items():
        raw = str(raw_key)
        if raw.startswith(heads):
            dropped.append(raw)
            continue
        if not raw.startswith(prefix):
            unexpected.append(raw)
            continue
        key: Optional[str] = raw[len(prefix):]
        if caffe_names:
            key = _rename_caffe(key, table)
        if key is None:
            unexpected.append(raw)
            continue
        if key in converted:
            raise FaceWeightsError(
                f"layout '{layout}': {raw} and {source_of[key]} both map to "
                f'{key}')
        converted[key] = _to_tensor(raw, value)
        source_of[key] = raw

    inferred = infer_depth(list(converted))
    if depth is None:
        if inferred is None:
            lines = [
                f"cannot convert layout '{layout}': cannot infer the ResNet "
                f'depth from the {len(converted)} backbone keys; pass '
                'depth= (--depth).'
            ]
            if unexpected:
                lines.append(_name_keys('unexpected keys', unexpected))
            if not converted:
                lines.append(f'  no key starts with the prefix {prefix!r} '
                             'of this layout; is the layout right?')
            raise FaceWeightsError('\n'.join(lines))
        depth = inferred
    expected = OrderedDict(_expected_shapes(depth))

    filled = [
        k for k in expected
        if k.endswith('.num_batches_tracked') and k not in converted
    ]
    missing = [k for k in expected if k not in converted and k not in filled]
    unexpected += [source_of[k] for k in converted if k not in expected]
    mismatched = [
        f'{source_of[k]} {tuple(converted[k].shape)} vs {k} {shape}'
        for k, shape in expected.items()
        if k in converted and tuple(converted[k].shape) != shape
    ]
    if missing or unexpected or mismatched:
        lines = [
            f"cannot convert layout '{layout}' to mmpretrain "
            f'ResNet-{depth}:'
        ]
        for kind, keys in (('missing backbone keys', missing),
                           ('unexpected keys', unexpected),
                           ('shape mismatches', mismatched)):
            if keys:
                lines.append(_name_keys(kind, keys))
        if inferred is not None and inferred != depth:
            lines.append(f'  the keys look like ResNet-{inferred}; '
                         f'try depth={inferred}.')
        if unexpected and not missing and not mismatched:
            lines.append('  if the unexpected keys are heads, drop them '
                         'with extra_heads= (--drop PREFIX).')
        raise FaceWeightsError('\n'.join(lines))

    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key in expected:
        out[key] = converted[key] if key in converted else torch.tensor(0)
    report = ConversionReport(
        layout=layout,
        depth=depth,
        num_mapped=len(expected) - len(filled),
        num_expected=len(expected),
        dropped=dropped,
        filled=filled,
        caffe_names=caffe_names,
        backbone=_backbone_cfg(layout, depth),
        note=LAYOUT_NOTES[layout])
    print_log(report.summary(), logger=logger)
    return out, report


def check_loadable(state_dict: Mapping[str, torch.Tensor],
                   depth: int) -> None:
    """Load ``state_dict`` into a fresh mmpretrain ``ResNet`` strictly.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Converted weights.
        depth (int): ResNet depth.

    Raises:
        FaceWeightsError: If torch reports missing or unexpected keys or a
            shape mismatch.
    """
    from mmpretrain.models import ResNet
    model = ResNet(depth=depth, init_cfg=None)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise FaceWeightsError(
            f'the converted weights do not load into mmpretrain '
            f'ResNet-{depth}: {err}') from None


def make_checkpoint(state_dict: Mapping[str, torch.Tensor],
                    report: ConversionReport,
                    source: str,
                    source_sha256: Optional[str] = None) -> dict:
    """Wrap converted weights as an mmengine-style checkpoint.

    Only tensors and plain containers go in, so the file loads with
    ``torch.load(weights_only=True)`` (no fallback warning in mmfer).

    Args:
        state_dict (Mapping[str, torch.Tensor]): Converted weights.
        report (ConversionReport): The conversion report.
        source (str): Source file name, recorded in ``meta``.
        source_sha256 (str, optional): Its SHA-256. Defaults to None.

    Returns:
        dict: ``{'state_dict': ..., 'meta': {...}}``.
    """
    meta = dict(
        source=str(source),
        layout=report.layout,
        depth=int(report.depth),
        converter='mmfer face_weights_to_mmpretrain',
        report=report.to_dict())
    if source_sha256 is not None:
        meta['source_sha256'] = source_sha256
    return {'state_dict': OrderedDict(state_dict), 'meta': meta}


def checkpoint_bytes(checkpoint: dict) -> bytes:
    """Serialise a checkpoint with :func:`torch.save`, in memory.

    Args:
        checkpoint (dict): The checkpoint.

    Returns:
        bytes: The file content, for an atomic write.
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, hex.

    Args:
        path (str): The file.
        chunk (int): Read size in bytes. Defaults to 1 MiB.

    Returns:
        str: The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


__all__ = [
    'LAYOUTS', 'LAYOUT_SPECS', 'LAYOUT_NOTES', 'FaceWeightsError',
    'UnsafePickleError', 'ConversionReport', 'load_pickle_restricted',
    'load_face_checkpoint', 'unwrap_state_dict', 'detect_layout',
    'vggface2_caffe_name_table', 'infer_depth', 'convert_face_weights',
    'check_loadable', 'make_checkpoint', 'checkpoint_bytes', 'file_sha256'
]
