# Copyright (c) OpenMMLab. All rights reserved.
"""mmfer.apis.build_model and load_weights on a tiny classifier.

The preprocessor is checked against a per-pixel normalisation written out
here; loading against the saved tensors; the errors for what each must
name.
"""
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain.registry import MODELS

import mmfer  # noqa: F401  (safe checkpoint loading)
from mmfer.apis import build_model, load_weights
from mmfer.utils.compat import ALLOW_PICKLE_ENV
from mmfer.utils.compat.checkpoint_loading import (UnsafeCheckpointError,
                                                   patch_checkpoint_loader)

MEAN = (10.0, 20.0, 30.0)
STD = (2.0, 4.0, 8.0)
CONFIG_PATH = 'configs/tiny/tiny_classifier.py'


@MODELS.register_module(force=True)
class TinyLoadNet(nn.Module):
    """A conv and a BatchNorm: 4 channels at the input's resolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return (self.bn(self.conv(x)), )


class Payload:
    """A class that ``torch.load(weights_only=True)`` does not allow."""


def tiny_cfg(num_classes: int = 3, **model) -> Config:
    return Config(
        dict(
            default_scope='mmpretrain',
            model=dict(
                type='ImageClassifier',
                backbone=dict(type='TinyLoadNet'),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead',
                    num_classes=num_classes,
                    in_channels=4),
                **model),
            data_preprocessor=dict(
                num_classes=num_classes, mean=MEAN, std=STD, to_rgb=False)))


def random_model(seed: int = 0, num_classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(tiny_cfg(num_classes))
    for value in model.state_dict().values():
        if value.is_floating_point():
            value.normal_()
    return model


def save(state: dict, path, **meta) -> str:
    torch.save(dict(state_dict=state, meta=meta), str(path))
    return str(path)


def test_top_level_preprocessor_unless_the_model_has_one():
    cfg = tiny_cfg()
    model = build_model(cfg)
    assert not model.training
    assert 'data_preprocessor' not in cfg.model
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 5, 6), dtype=torch.uint8)
    got = model.data_preprocessor(dict(inputs=[image]), False)['inputs'][0]
    expected = torch.empty(3, 5, 6)
    for c in range(3):
        for y in range(5):
            for x in range(6):
                expected[c, y, x] = (float(image[c, y, x]) - MEAN[c]) / STD[c]
    torch.testing.assert_close(got, expected)

    own = build_model(
        tiny_cfg(data_preprocessor=dict(mean=[0.0] * 3, std=[1.0] * 3)))
    got = own.data_preprocessor(dict(inputs=[image]), False)['inputs'][0]
    torch.testing.assert_close(got, image.float())


def test_device():
    model = build_model(tiny_cfg(), device='meta')
    assert {p.device.type for p in model.parameters()} == {'meta'}


def test_loads_every_tensor_and_returns_the_meta(tmp_path):
    trained = random_model(seed=0)
    # as saved from a distributed wrapper
    state = {f'module.{k}': v for k, v in trained.state_dict().items()}
    path = save(state, tmp_path / 'ddp.pth', dataset_meta=dict(classes='ab'))
    model = random_model(seed=1)
    meta = load_weights(model, path, CONFIG_PATH)
    assert meta == dict(dataset_meta=dict(classes='ab'))
    expected = trained.state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)

    torch.save(trained.state_dict(), str(tmp_path / 'plain.pth'))
    assert load_weights(random_model(2), str(tmp_path / 'plain.pth')) == {}


def test_missing_checkpoint_names_it(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError) as err:
        load_weights(random_model(), missing, CONFIG_PATH)
    assert f'checkpoint {missing} not found' in str(err.value)
    assert CONFIG_PATH in str(err.value)


def test_other_model_names_both_files_and_the_keys(tmp_path):
    marker = tmp_path / 'executed'
    state = {f'student.{k}': v for k, v in random_model().state_dict().items()}
    recorded = Config(dict(model=dict(type='TeacherNet', depth=2)))
    path = save(state, tmp_path / 'teacher.pth', cfg=recorded.pretty_text)
    with pytest.raises(ValueError) as err:
        load_weights(random_model(), path, CONFIG_PATH)
    text = str(err.value)
    assert f'checkpoint {path} (trained model: TeacherNet)' in text
    assert f'of config {CONFIG_PATH} (ImageClassifier)' in text
    missing = text.split('missing keys (in the model, not in the checkpoint'
                         '): ')[1].split(';')[0].split(', ')
    # torch lets BatchNorm load a state dict without module versions (as
    # here, not saved by state_dict()) without num_batches_tracked.
    assert missing == [
        k for k in random_model().state_dict()
        if not k.endswith('num_batches_tracked')
    ]
    assert ('unexpected keys (in the checkpoint, not in the model): '
            'student.backbone.conv.weight, ') in text

    # The recorded config is read, not run: the checkpoint is untrusted.
    code = (f'open({str(marker)!r}, "w")\n'
            "model = {'type': 'TextNet'}\n")
    path = save(state, tmp_path / 'code.pth', cfg=code)
    with pytest.raises(ValueError, match=r'\(trained model: TextNet\)'):
        load_weights(random_model(), path, CONFIG_PATH)
    assert not marker.exists()

    # Without a recorded config or a config path, neither is claimed.
    path = save(state, tmp_path / 'bare.pth')
    with pytest.raises(ValueError) as err:
        load_weights(random_model(), path)
    assert 'trained model' not in str(err.value)
    assert f'{path} does not fit the model (ImageClassifier)' in str(
        err.value)


def test_long_key_lists_are_cut(tmp_path):
    state = dict(random_model().state_dict())
    state.update({f'extra.{i}': torch.zeros(1) for i in range(13)})
    path = save(state, tmp_path / 'extra.pth')
    with pytest.raises(ValueError) as err:
        load_weights(random_model(), path, CONFIG_PATH)
    listed = str(err.value).split('not in the model): ')[1].split('. ')[0]
    assert listed == ', '.join(f'extra.{i}' for i in range(10)) + \
        ' (and 3 more)'
    assert 'missing keys' not in str(err.value)


def test_size_mismatch_is_reported_with_the_other_keys(tmp_path):
    state = dict(random_model(num_classes=5).state_dict())
    state['extra.weight'] = torch.zeros(2)
    path = save(state, tmp_path / 'five.pth')
    with pytest.raises(ValueError) as err:
        load_weights(random_model(num_classes=3), path, CONFIG_PATH)
    text = str(err.value)
    assert ('size mismatch (checkpoint vs model shape): head.fc.weight '
            '(5, 4) vs (3, 4), head.fc.bias (5,) vs (3,)') in text
    assert 'unexpected keys (in the checkpoint, not in the model): ' \
        'extra.weight' in text
    assert 'missing keys' not in text


def test_a_file_without_a_state_dict(tmp_path):
    path = str(tmp_path / 'tensor.pth')
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match='tensor.pth holds a Tensor'):
        load_weights(random_model(), path, CONFIG_PATH)


def test_pickled_objects_need_the_opt_in(tmp_path, monkeypatch):
    if not patch_checkpoint_loader():
        pytest.skip('this torch fully unpickles checkpoints by default, so '
                    'mmfer has no safe loader to check')
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    trained = random_model()
    path = save(trained.state_dict(), tmp_path / 'pickled.pth',
                payload=Payload())
    with pytest.raises(UnsafeCheckpointError, match='pickled.pth'):
        load_weights(random_model(1), path, CONFIG_PATH)
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)

    monkeypatch.setenv(ALLOW_PICKLE_ENV, '1')
    model = random_model(1)
    assert isinstance(load_weights(model, path)['payload'], Payload)
    torch.testing.assert_close(model.state_dict(), trained.state_dict())
