# Copyright (c) OpenMMLab. All rights reserved.
"""``tools/test.py`` on a checkpoint that needs full unpickling: refused
without the opt-in, evaluated with ``--allow-pickle``."""
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmpretrain.registry import MODELS

from mmfer.utils import compat
from tool_runs import TEST, run, write_config


@pytest.fixture
def old_checkpoint(tmp_path, tiny_rafdb):
    """A config and a checkpoint of its model whose message hub pickles
    ``HistoryBuffer`` as mmengine 0.10.7 does (through
    ``builtins.getattr``)."""
    cfg = write_config(tmp_path, tiny_rafdb, epochs=1)
    model = MODELS.build(Config.fromfile(cfg).model)
    losses = HistoryBuffer([1.0], [1])
    ckpt = dict(
        state_dict=model.state_dict(),
        meta=dict(epoch=1, iter=4),
        message_hub=dict(log_scalars={'train/loss': losses}))
    path = str(tmp_path / 'old.pth')
    original = compat.get_original(
        'mmengine.logging.HistoryBuffer.__getstate__')
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HistoryBuffer, '__getstate__', original)
        torch.save(ckpt, path)
    return cfg, path


def test_test_tool_needs_opt_in_for_old_checkpoint(tmp_path, old_checkpoint):
    cfg, path = old_checkpoint
    env = {compat.ALLOW_PICKLE_ENV: '0'}
    refused = run([TEST, cfg, path, '--work-dir', str(tmp_path / 'refused')],
                  env=env, check=False)
    assert refused.returncode != 0
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith(
        'mmfer.utils.compat.checkpoint_loading.UnsafeCheckpointError: ')
    for part in (path, '`builtins.getattr`', 'MMFER_ALLOW_PICKLE=1',
                 '--allow-pickle'):
        assert part in error
    assert 'FER test: top-1' not in refused.stdout + refused.stderr

    allowed = run([
        TEST, cfg, path, '--work-dir',
        str(tmp_path / 'allowed'), '--allow-pickle'
    ], env=env)
    log = allowed.stdout + allowed.stderr
    assert f'Checkpoint {path} is not loadable with' in log
    # the reference: the same weights saved without the message hub
    plain = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=torch.load(path, weights_only=False)
                    ['state_dict']), plain)
    reference = run([TEST, cfg, plain, '--work-dir', str(tmp_path / 'ref')],
                    env=env)
    assert _test_line(log) == _test_line(reference.stdout + reference.stderr)


def _test_line(log: str) -> str:
    """The ``FER test: top-1 ...`` line of a tools/test.py log."""
    return log.split('FER test: top-1 ')[1].splitlines()[0]
