# Copyright (c) OpenMMLab. All rights reserved.
"""CoTeachingClassifier: ReSup's training step, checked against the official
per-sample computation, by construction and by gradient."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer  # noqa: F401
from mmfer.models.utils.mixture_1d import bound_similarity

NUM_CLASSES = 7
BATCH = 6


def member(head=None, width=8, **kwargs):
    """A tiny ResNet-18 classifier (any mmpretrain classifier config)."""
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=width,
            stem_channels=width,
            out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=head or dict(
            type='LinearClsHead',
            num_classes=NUM_CLASSES,
            in_channels=width * 8,
            init_cfg=None))
    cfg.update(kwargs)
    return cfg


def eac_member(width=8):
    return dict(
        type='FERClassifier',
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=width,
            stem_channels=width,
            out_indices=(3, )),
        neck=None,
        head=dict(
            type='EACHead',
            num_classes=NUM_CLASSES,
            in_channels=width * 8,
            att_loss=dict(type='AttentionConsistencyLoss', loss_weight=1.0)))


def build(networks=None, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='CoTeachingClassifier',
            networks=networks or [member(), member(width=16)],
            **kwargs))
    model.init_weights()
    return model


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(BATCH, 3, 32, 32, generator=gen)
    labels = torch.randint(0, NUM_CLASSES, (BATCH, ), generator=gen)
    samples = [
        DataSample(metainfo=dict(sample_idx=10 + i)).set_gt_label(int(y))
        for i, y in enumerate(labels)
    ]
    return inputs, labels, samples


def fit_tables(model, seed=1):
    """Install two different, non-trivial lookup tables."""
    gen = torch.Generator().manual_seed(seed)
    tables = torch.rand(2, model.lookup_bins, generator=gen,
                        dtype=torch.float64).sort(dim=1).values
    model.set_noise_model(tables, torch.ones(2, 3, 2, dtype=torch.float64))
    return tables


def official_loss(z0, z1, y, table0, table1, agreement=5.0):
    """ReSup's comloss written as the official script computes it: a loop
    over samples, NLL of log-softmax slices, the similarity to the one-hot
    label, int(100 * s) into the other network's table."""
    total = 0.
    for i in range(len(y)):
        p0, p1 = F.softmax(z0[i:i + 1], 1), F.softmax(z1[i:i + 1], 1)
        onehot = F.one_hot(y[i:i + 1], NUM_CLASSES).float()
        ws = []
        for p, table in ((p0, table0), (p1, table1)):
            # compute_probabilities_batch: only values outside (0, 1) move
            s = F.cosine_similarity(p.detach(), onehot)
            s[s >= 1] = 1 - 10e-4
            s[s <= 0] = 10e-4
            # look_lookup: int(100 * s), negatives to 0, 100 to 99
            idx = int(100 * float(s))
            idx = 0 if idx < 0 else (99 if idx == 100 else idx)
            ws.append(float(min(max(float(table[idx]), 1e-4), 1 - 1e-4)))
        ce0 = F.nll_loss(F.log_softmax(z0[i:i + 1], 1), y[i:i + 1])
        ce1 = F.nll_loss(F.log_softmax(z1[i:i + 1], 1), y[i:i + 1])
        mse = ((p0 - p1)**2).mean()
        total = total + ws[1] * ce0 + ws[0] * ce1 + agreement * mse
    return total / len(y)


def logits_of(model, inputs):
    return [net(inputs, mode='tensor') for net in model.networks]


def grads(model):
    return {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }


def test_training_step_equals_official_computation():
    model = build()
    tables = fit_tables(model)
    inputs, labels, samples = batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'net0.loss', 'net1.loss', 'loss_agree'}
    total = sum(losses.values())
    total.backward()
    ours = grads(model)

    ref_model = copy.deepcopy(model)
    ref_model.zero_grad()
    z0, z1 = logits_of(ref_model, inputs)
    ref = official_loss(z0, z1, labels, tables[0], tables[1])
    ref.backward()
    expected = grads(ref_model)
    torch.testing.assert_close(total, ref, rtol=1e-5, atol=1e-6)
    assert ours.keys() == expected.keys()
    for name in ours:
        torch.testing.assert_close(
            ours[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_swap_by_construction():
    """Network 0's loss is its CE weighted by network 1's table looked up
    at network 1's similarity, and the reverse."""
    model = build(agreement_weight=0.)
    tables = fit_tables(model)
    inputs, labels, samples = batch()
    losses = model.loss(inputs, samples)
    z0, z1 = [z.detach() for z in logits_of(model, inputs)]
    sims = model.similarities([z0, z1], labels)
    for a, (z, other) in enumerate(((z0, 1), (z1, 0))):
        idx = (sims[other] * 100).long().clamp(0, 99)
        w = tables[other][idx].clamp(1e-4, 1 - 1e-4).float()
        ce = F.cross_entropy(z, labels, reduction='none')
        torch.testing.assert_close(losses[f'net{a}.loss'], (w * ce).mean())
    assert 'loss_agree' not in losses


def test_swap_by_gradient():
    """Network 0's gradient depends on network 1's table only: changing
    network 0's own table leaves it unchanged, changing network 1's scales
    it."""
    inputs, _, samples = batch()

    def net0_grads(table0, table1):
        model = build(agreement_weight=0.)
        model.set_noise_model(
            torch.stack([table0, table1]),
            torch.ones(2, 3, 2, dtype=torch.float64))
        sum(model.loss(inputs, samples).values()).backward()
        return {
            n: p.grad
            for n, p in model.networks[0].named_parameters()
        }, model

    half = torch.full((100, ), 0.5, dtype=torch.float64)
    quarter = torch.full((100, ), 0.25, dtype=torch.float64)
    base, _ = net0_grads(half, half)
    own_changed, _ = net0_grads(quarter, half)
    other_changed, _ = net0_grads(half, quarter)
    for name in base:
        torch.testing.assert_close(own_changed[name], base[name])
        torch.testing.assert_close(
            other_changed[name], base[name] * 0.5, rtol=1e-4, atol=1e-8)


def test_agreement_term_value_and_gradient():
    model = build(agreement_weight=5.)
    # every weight at the clamp floor: the CE terms are 1e-4 of themselves
    model.set_noise_model(
        torch.zeros(2, 100, dtype=torch.float64),
        torch.ones(2, 3, 2, dtype=torch.float64))
    inputs, _, samples = batch()
    losses = model.loss(inputs, samples)
    z0, z1 = logits_of(model, inputs)
    p0, p1 = z0.softmax(1), z1.softmax(1)
    expected = 5. * ((p0 - p1)**2).sum() / (BATCH * NUM_CLASSES)
    torch.testing.assert_close(losses['loss_agree'], expected)
    # its gradient reaches both networks, equal to the hand formula's
    model.zero_grad()
    losses['loss_agree'].backward()
    ours = grads(model)
    model.zero_grad()
    z0, z1 = logits_of(model, inputs)
    (5. * ((z0.softmax(1) - z1.softmax(1))**2).mean()).backward()
    expected = grads(model)
    assert any(k.startswith('networks.0.') for k in ours)
    assert any(k.startswith('networks.1.') for k in ours)
    for name in expected:
        torch.testing.assert_close(ours[name], expected[name])


def test_warmup_is_plain_cross_entropy():
    model = build()
    assert not model.fitted
    inputs, labels, samples = batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {'net0.loss', 'net1.loss'}
    for a, z in enumerate(logits_of(model, inputs)):
        torch.testing.assert_close(losses[f'net{a}.loss'],
                                   F.cross_entropy(z, labels))


def test_eac_heads_get_the_weight_on_classification_only():
    model = build(networks=[eac_member(), eac_member()], agreement_weight=0.)
    inputs, labels, samples = batch()
    unweighted = model.loss(inputs, samples)
    model.set_noise_model(
        torch.full((2, 100), 0.25, dtype=torch.float64),
        torch.ones(2, 3, 2, dtype=torch.float64))
    weighted = model.loss(inputs, samples)
    for a in range(2):
        torch.testing.assert_close(weighted[f'net{a}.loss_cls'],
                                   0.25 * unweighted[f'net{a}.loss_cls'])
        torch.testing.assert_close(weighted[f'net{a}.loss_att'],
                                   unweighted[f'net{a}.loss_att'])


def test_recorded_similarities_carry_sample_idx():
    model = build()
    model.loss(*batch()[::2])
    assert model.similarity_bank.capacity == 0  # not recording
    model.record_similarities = True
    inputs, labels, samples = batch()
    model.loss(inputs, samples)
    idx, sims = model.similarity_bank.known()
    assert idx.tolist() == list(range(10, 10 + BATCH))
    z = logits_of(model, inputs)
    torch.testing.assert_close(sims.T, model.similarities(z, labels))
    assert 'similarity_bank.values' in model.state_dict()


def test_predict_with_network_or_ensemble():
    model = build()
    model.eval()
    inputs, _, samples = batch()
    z0, z1 = [z.detach() for z in logits_of(model, inputs)]
    preds = model.predict(inputs, copy.deepcopy(samples))
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), z0.softmax(1))
    model.predict_with = 'net1'
    torch.testing.assert_close(model(inputs), z1)
    model.predict_with = 'ensemble'
    mean = (z0.softmax(1) + z1.softmax(1)) / 2
    preds = model.predict(inputs, copy.deepcopy(samples))
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), mean)
    assert [int(p.pred_label) for p in preds] == mean.argmax(1).tolist()


def test_checkpoint_holds_both_networks_and_the_noise_model():
    model = build()
    tables = fit_tables(model)
    state = model.state_dict()
    assert any(k.startswith('networks.0.backbone.') for k in state)
    assert any(k.startswith('networks.1.head.') for k in state)
    restored = build()
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.lookup_tables, tables)
    assert restored.fitted and int(restored.num_fits) == 1


def test_bad_arguments_say_what_to_fix():
    with pytest.raises(ValueError, match='exactly two'):
        build(networks=[member()])
    with pytest.raises(ValueError, match='predict_with'):
        build(predict_with='net2')


def _save_backbone(path, width=8, prefix=''):
    net = MODELS.build(member(width=width))
    state = {prefix + k: v for k, v in net.backbone.state_dict().items()}
    torch.save(dict(state_dict=state), path)
    return len(state)


def capture_log(name):
    """The messages a new current logger named ``name`` logs from now."""
    logger = MMLogger.get_instance(name)
    messages = []
    handler_emit = logger.handlers[0].emit

    def capture(record):
        messages.append(record.getMessage())
        handler_emit(record)

    logger.handlers[0].emit = capture
    return messages


def test_pretrained_backbone_is_verified_and_counted(tmp_path):
    ckpt = str(tmp_path / 'backbone.pth')
    total = _save_backbone(ckpt)
    pretrained = member()
    pretrained['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=ckpt)
    messages = capture_log('test_co_teaching_pretrained')
    model = build(networks=[pretrained, member()])
    assert any(
        f'CoTeachingClassifier: networks.0.backbone loaded {total}/{total} '
        'tensors' in m for m in messages), messages
    source = torch.load(ckpt, weights_only=True)['state_dict']
    for key, value in model.networks[0].backbone.state_dict().items():
        assert torch.equal(value, source[key]), key


def test_a_checkpoint_that_loads_nothing_stops_the_run(tmp_path):
    # the keys of an unconverted DMUE file: nothing matches the backbone,
    # which mmengine's Pretrained init only warns about
    ckpt = str(tmp_path / 'wrong_prefix.pth')
    total = _save_backbone(ckpt, prefix='feat_net.')
    pretrained = member()
    pretrained['backbone']['init_cfg'] = dict(
        type='Pretrained', checkpoint=ckpt)
    with pytest.raises(ValueError, match=f'loaded 0/{total} tensors'):
        build(networks=[member(), pretrained])
    # and a partial load names what is missing
    state = torch.load(ckpt, weights_only=True)['state_dict']
    state = {k[len('feat_net.'):]: v for k, v in state.items()}
    del state['layer4.1.bn2.weight']
    torch.save(dict(state_dict=state), ckpt)
    with pytest.raises(ValueError, match='layer4.1.bn2.weight'):
        build(networks=[pretrained, member()])
    # unless the check is switched off
    build(networks=[pretrained, member()], check_pretrained=False)


SMALL_BACKBONE = dict(
    type='ResNet',
    depth=18,
    base_channels=8,
    stem_channels=8,
    out_indices=(3, ))


def test_networks_take_the_systems_backbone_unless_they_name_one():
    linear = dict(
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=NUM_CLASSES))
    eac = dict(head=dict(type='EACHead', num_classes=NUM_CLASSES))
    model = build(networks=[linear, eac], backbone=SMALL_BACKBONE)
    net0, net1 = model.networks
    assert type(net0).__name__ == type(net1).__name__ == 'FERClassifier'
    # copies: two backbones of the same shape, trained apart
    assert net0.backbone is not net1.backbone
    assert net0.backbone.conv1.weight.shape == (8, 3, 7, 7)
    assert net1.backbone.conv1.weight.shape == (8, 3, 7, 7)
    assert net0.head.in_channels == net1.head.in_channels == 64
    assert set(model.loss(*batch()[::2])) == {
        'net0.loss', 'net1.loss_cls', 'net1.loss_att'
    }
    # a network with a backbone of its own keeps it
    model = build(networks=[member(width=16), linear],
                  backbone=SMALL_BACKBONE)
    assert model.networks[0].backbone.conv1.weight.shape[0] == 16
    assert model.networks[1].backbone.conv1.weight.shape[0] == 8
    with pytest.raises(KeyError, match='model.backbone'):
        build(networks=[linear, linear])


def test_bank_and_noise_model_survive_a_checkpoint_of_another_size():
    model = build()
    model.record_similarities = True
    inputs, _, samples = batch()
    model.loss(inputs, samples)
    state = model.state_dict()
    assert state['similarity_bank.values'].shape == (16, 2)  # doubled
    restored = build()
    restored.similarity_bank.update(torch.tensor([40]), torch.ones(1, 2))
    restored.load_state_dict(state)
    assert torch.equal(restored.similarity_bank.values,
                       model.similarity_bank.values)


def test_a_checkpoint_from_before_the_bank_loads_with_a_warning(tmp_path):
    """Checkpoints of ReSup runs before the similarities were buffers: no
    similarity_bank, the hook's similarities at the top level."""
    from mmengine.runner import load_checkpoint

    from mmfer.apis import load_weights
    model = build()
    tables = fit_tables(model)
    state = model.state_dict()
    del state['similarity_bank.values']
    path = str(tmp_path / 'old.pth')
    torch.save(
        dict(
            state_dict=state,
            meta=dict(epoch=2),
            resup_similarities=torch.rand(30, 2, dtype=torch.float64)), path)
    loaders = dict(load_weights=lambda m: load_weights(m, path),
                   runner=lambda m: load_checkpoint(m, path, strict=True))
    for name, load in loaders.items():
        # a logger of its own: mmengine logs a repeated warning once
        messages = capture_log(f'test_co_teaching_old_checkpoint_{name}')
        restored = build()
        load(restored)
        torch.testing.assert_close(restored.lookup_tables, tables)
        assert restored.similarity_bank.capacity == 0
        [warning] = [m for m in messages if 'similarity_bank' in m]
        assert "similarity_source='train_step'" in warning
        assert 'Nothing to do for testing' in warning


def _record_on_two_ranks(rank: int, world_size: int, out_dir: str) -> None:
    """Each rank steps on 3 samples: 0, 2, 4 and 1, 3, 0, the repeat of
    sample 0 being what a distributed sampler pads 5 samples with."""
    model = build()
    model.record_similarities = True
    inputs, _, samples = batch()
    for i, sample in enumerate(samples):
        sample.set_metainfo(dict(sample_idx=[0, 2, 4, 1, 3, 0][i]))
    mine = slice(3 * rank, 3 * rank + 3)
    model.loss(inputs[mine], samples[mine])
    torch.save(dict(model.named_buffers()), f'{out_dir}/rank{rank}.pth')


def test_step_similarities_are_gathered_by_sample_idx(tmp_path):
    from tool_runs import spawn_gloo
    spawn_gloo(_record_on_two_ranks, 2, tmp_path)
    states = [
        torch.load(tmp_path / f'rank{r}.pth', weights_only=True)
        for r in range(2)
    ]
    bank = states[0]['similarity_bank.values']
    assert torch.equal(states[1]['similarity_bank.values'], bank)
    # one process computes each rank's batch (BatchNorm in train mode
    # normalises with the batch's statistics) from the same weights
    model = build()
    inputs, labels, _ = batch()
    expected = torch.cat([
        model.similarities(logits_of(model, inputs[half]), labels[half]).T
        for half in (slice(0, 3), slice(3, 6))
    ])
    assert bank.shape == (5, 2)
    # samples 0, 2, 4 | 1, 3, and 0 again from rank 1: rank 0's row counts
    for row, sample in zip(expected, [0, 2, 4, 1, 3]):
        torch.testing.assert_close(bank[sample], row)
    assert not torch.equal(expected[5], expected[0])



def test_similarity_rule_is_the_official_one():
    """ReSup's code maps s >= 1 to 0.999 and s <= 0 to 0.001 and keeps every
    other value; 'clamp' (mmfer's earlier rule) is a switch, and the old
    similarity_clamp key means it, with a warning."""
    s = torch.tensor([1.0, 0.9999, 0.9995, 0.5, 0.0004, 0.0, -0.1, 1.2],
                     dtype=torch.float64)
    official = bound_similarity(s)
    assert official.tolist() == [
        0.999, 0.9999, 0.9995, 0.5, 0.0004, 0.001, 0.001, 0.999
    ]
    clamped = bound_similarity(s, rule='clamp')
    assert clamped.tolist() == [
        0.999, 0.999, 0.999, 0.5, 0.001, 0.001, 0.001, 0.999
    ]
    # a confident prediction: cos(p, onehot) = 0.99992, kept for the fit
    probs = torch.full((1, NUM_CLASSES), 0.03 / (NUM_CLASSES - 1),
                       dtype=torch.float64)
    probs[0, 2] = 0.97
    z = [probs.log(), probs.log()]
    label = torch.tensor([2])
    expected = 0.97 / probs.norm().item()
    assert 0.999 < expected < 1
    model = build()
    assert model.similarity_rule == 'official'
    assert model.similarities(z, label)[:, 0].tolist() == pytest.approx(
        [expected] * 2, abs=1e-12)
    old = build(similarity_clamp=(1e-3, 1 - 1e-3))
    assert old.similarity_rule == 'clamp'
    assert old.similarities(z, label)[:, 0].tolist() == [0.999, 0.999]
    with pytest.raises(ValueError, match="similarity_rule='mean'"):
        build(similarity_rule='mean')
