# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from mmfer.apis.model_loading import load_fitting

PARTIAL_LOAD_HINT = (
    'Pass the config the checkpoint was trained with (its work_dir holds a '
    'copy), or, to start from the tensors that fit on purpose (e.g. '
    'fine-tuning another head), pass --allow-partial-load to tools/train.py '
    "or tools/test.py (default_hooks.checkpoint_fit.allow_partial=True).")


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuse a checkpoint that does not fit the model.

    mmengine's runner loads ``load_from`` (``tools/test.py``'s checkpoint,
    ``--resume``) with ``strict=False`` and only logs a warning about
    missing and unexpected keys, so testing a checkpoint of another model
    scores a model that was never loaded. This hook checks the checkpoint
    when the runner has read it, before the runner loads it, and stops the
    run with the missing, unexpected and differently shaped keys named.
    Per-sample banks whose number of rows follows the data may differ in
    that number.

    Args:
        allow_partial (bool): Log the mismatch as a warning and let the
            runner load the tensors that fit. Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: bool = False) -> None:
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check the checkpoint against the model.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint the runner read.

        Raises:
            ValueError: If it does not fit and ``allow_partial`` is False.
        """
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = checkpoint.get('state_dict', checkpoint)
        # Loads the fitting tensors, as the runner does right after.
        problems = load_fitting(model, state)
        if not problems:
            return
        text = (f'checkpoint {self._name(runner)} does not fit the model of '
                f'this config ({type(model).__name__}): ' +
                '; '.join(problems) + '.')
        if not self.allow_partial:
            raise ValueError(f'{text} {PARTIAL_LOAD_HINT}')
        runner.logger.warning(f'{text} Loading the tensors that fit '
                              '(allow_partial=True).')

    @staticmethod
    def _name(runner) -> Optional[str]:
        return getattr(runner, '_load_from', None) or '(resumed)'


def configure_checkpoint_fit(cfg, allow_partial: bool) -> None:
    """Give a config's runner the checkpoint check (``checkpoint_fit`` in
    ``default_hooks``, added where a config lacks it, e.g. a plain
    mmpretrain config) and set whether a partial load is allowed.

    Args:
        cfg (Config): The run's config, changed in place.
        allow_partial (bool): See :class:`CheckpointFitHook`.
    """
    hooks = cfg.setdefault('default_hooks', {})
    hook = hooks.get('checkpoint_fit') or dict(type='CheckpointFitHook')
    hook['allow_partial'] = allow_partial
    hooks['checkpoint_fit'] = hook
