# Fast paths for training, each a switch that leaves the result unchanged up
# to float rounding (measured on CPU in tests/test_engine/test_fast_paths.py).
# mmengine refuses two `_base_` files that set the same key, and a method
# config already sets optim_wrapper, env_cfg and default_hooks, so the
# switches live under `fast_training`; a config turns each on with one line
# (they merge into the method's settings; lr, optimizer etc. are kept):
#
#   _base_ = ['../eac/r18_synthfer_noise30.py', '../_base_/fast_training.py']
#   optim_wrapper = {{_base_.fast_training.optim_wrapper}}
#   default_hooks = {{_base_.fast_training.default_hooks}}
#   env_cfg = {{_base_.fast_training.env_cfg}}
#   # compile = {{_base_.fast_training.compile}}
#
# From the command line, the same switches are
#   --cfg-options optim_wrapper.type=FERAmpOptimWrapper \
#       optim_wrapper.dtype=bfloat16 \
#       default_hooks.channels_last.type=ChannelsLastHook \
#       env_cfg.cudnn_benchmark=True compile.backend=inductor
fast_training = dict(
    # bfloat16 autocast of the forward passes and losses on the model's
    # device (CPU or GPU), no loss scaling; checkpoints stay plain ones.
    # On GPUs without bfloat16 (before Ampere) use dtype='float16', which
    # adds dynamic loss scaling.
    optim_wrapper=dict(type='FERAmpOptimWrapper', dtype='bfloat16'),
    # Weights and input images in the channels-last (NHWC) memory layout,
    # which cuDNN and oneDNN convolutions run faster, most of all in
    # bfloat16/float16 on tensor cores.
    default_hooks=dict(channels_last=dict(type='ChannelsLastHook')),
    # cuDNN times its convolution algorithms for each input shape once and
    # keeps the fastest (GPU only; fixed image sizes, as in FER, suit it).
    # The choice may differ between runs, so results are not bit-exact;
    # randomness=dict(deterministic=True) turns it off again.
    env_cfg=dict(cudnn_benchmark=True),
    # torch.compile of the runner's train_step. The default backend,
    # inductor, needs a C++ compiler on CPU and Triton on GPU; the first
    # iterations are slow while it compiles. Off unless a config opts in;
    # it does not yet work with LANetClassifier (its queues change in
    # place before backward).
    compile=dict(backend='inductor'),
)
