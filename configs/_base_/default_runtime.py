# mmfer components live in mmpretrain's registries: keep mmpretrain's scope
# and import mmfer so that stock mmpretrain tools can run these configs.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmfer'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # No `save_best`: FER benchmarks have no validation split, and choosing
    # a checkpoint on the test split inflates results.
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # a checkpoint of another model (load_from, tools/test.py, --resume) is
    # refused with the keys named instead of loading partially
    checkpoint_fit=dict(type='CheckpointFitHook'),
)
custom_hooks = [
    dict(type='FERReportHook'),
    dict(type='EpochSeedHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
