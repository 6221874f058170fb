# ReSup's noise modelling (official utils.py), for any two-network
# CoTeachingClassifier: inherit this file and append `resup_hook` to the
# runtime's hooks (./resup_resnet18.py does).

# Fits the mixtures and lookup tables, logs the noise detection and writes
# <work_dir>/noise_scores.csv.
resup_hook = dict(
    type='ReSupHook',
    mixture='beta',  # 2-component Beta mixture; 'gaussian' is an option
    em_iters=10,
    warmup_epochs=1,  # epoch 0: plain cross-entropy on both networks
    # after each epoch, an eval-mode pass over the training set with the
    # training augmentation, as the official code; 'train_step' reuses the
    # epoch's train-mode similarities (README.md)
    similarity_source='extra_pass',
    noise_threshold=0.5,  # the logged noise detection only, not training
    scores_file='noise_scores.csv')
