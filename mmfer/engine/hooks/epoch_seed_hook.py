# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import set_random_seed
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed every RNG at the start of each training epoch.

    mmengine seeds Python, numpy and torch once per process, and a resumed
    run starts from that seed again instead of from where the interrupted
    run's streams were (validation dataloaders also draw from the global
    torch RNG). Seeding from ``(seed, epoch)`` at every epoch makes a run
    resumed from an epoch checkpoint draw exactly the augmentations an
    uninterrupted run draws, so both reach the same weights on CPU with
    ``randomness=dict(deterministic=True)``.

    Args:
        seed (int, optional): Base seed. Defaults to the runner's seed.
        diff_rank_seed (bool): Add the rank to the seed so ranks draw
            different augmentations. Defaults to False, like mmengine.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 seed: Optional[int] = None,
                 diff_rank_seed: bool = False) -> None:
        self.seed = seed
        self.diff_rank_seed = diff_rank_seed

    def before_train_epoch(self, runner) -> None:
        """Seed from the base seed and the epoch about to run.

        Args:
            runner (Runner): The runner.
        """
        base = runner.seed if self.seed is None else self.seed
        seed = base + 1000003 * (runner.epoch + 1)
        if self.diff_rank_seed:
            seed += get_rank()
        set_random_seed(seed % 2**31)
