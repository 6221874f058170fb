# Copyright (c) OpenMMLab. All rights reserved.
"""LANetClassifier: one LA-Net training step against a naive re-derivation
of the official step, and the history bank, momentum encoder and queues."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_state_dict
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmfer.models.backbones.expression_landmark_backbone  # noqa: F401
import mmfer.models.classifiers.lanet_classifier  # noqa: F401
import mmfer.models.losses.adaptive_wing_loss  # noqa: F401
import mmfer.models.losses.expression_landmark_contrastive_loss  # noqa: F401
import mmfer.models.necks.landmark_fpn  # noqa: F401
import mmfer.models.utils.label_distribution  # noqa: F401
from mmfer.models.utils import flip_width
# the naive per-pixel rendering of the official heatmap rule
from test_landmark_heatmaps import naive_heatmap, naive_weights

NUM_CLASSES = 7
BATCH = 8
SIZE = 32
NUM_LANDMARKS = 5
WIDTH = 8  # expression maps of 8, 16, 32, 64 channels
FPN_CHANNELS = 16
QUEUE = 32
K = 3
# The official constants.
HISTORY_M = 0.9
MOMENTUM = 0.999
CONFIDENCE = 0.7
TEMPERATURE = 0.1
WEIGHTS = dict(landmark=1.0, kl=1.0, contrastive=0.1)
# A plain ResNet-18: stem, 16 block convs, 3 downsample convs.
RESNET18_CONVS = 20


def build(head='linear', **kwargs):
    torch.manual_seed(0)
    if head == 'linear':
        head_cfg = dict(
            type='LinearClsHead',
            num_classes=NUM_CLASSES,
            in_channels=WIDTH * 8,
            init_cfg=None)
        neck = dict(type='GlobalAveragePooling')
    else:
        head_cfg = dict(
            type='EACHead',
            num_classes=NUM_CLASSES,
            in_channels=WIDTH * 8,
            att_loss=dict(type='AttentionConsistencyLoss', loss_weight=1.0))
        neck = None
    model = MODELS.build(
        dict(
            type='LANetClassifier',
            backbone=dict(
                type='ExpressionLandmarkBackbone',
                backbone=dict(
                    type='ResNet',
                    depth=18,
                    base_channels=WIDTH,
                    stem_channels=WIDTH,
                    out_indices=(0, 1, 2, 3)),
                num_shared_stages=1),
            landmark_neck=dict(
                type='LandmarkFPN',
                out_channels=FPN_CHANNELS,
                num_landmarks=NUM_LANDMARKS),
            head=head_cfg,
            neck=neck,
            label_distribution=dict(type='LabelDistributionEstimator', k=K),
            queue_size=QUEUE,
            **kwargs))
    model.init_weights()
    return model


def make_batch(seed=0,
               indices=None,
               labels=None,
               valid=None,
               dtype=torch.float32):
    """Images and data samples with float32 landmarks (as PackFERInputs
    packs them) inside, across and beyond the image border."""
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(BATCH, 3, SIZE, SIZE, generator=gen, dtype=dtype)
    if labels is None:
        labels = torch.randint(0, NUM_CLASSES, (BATCH, ), generator=gen)
    if indices is None:
        indices = range(100, 100 + BATCH)
    if valid is None:
        valid = [True] * BATCH
    landmarks = torch.rand(BATCH, NUM_LANDMARKS, 2, generator=gen) * (
        SIZE + 40) - 20
    samples = []
    for i in range(BATCH):
        sample = DataSample(metainfo=dict(sample_idx=int(indices[i])))
        sample.set_gt_label(int(labels[i]))
        sample.landmarks = landmarks[i]
        sample.has_landmarks = torch.tensor([bool(valid[i])])
        samples.append(sample)
    return inputs, samples


def naive_targets(samples, stride=4, sigma=1.5, weight=10.0, threshold=0.2):
    """``(N, K, h, w)`` heatmaps and weight maps of the official rule,
    pixel by pixel, at the input size / stride."""
    side = SIZE // stride
    maps = np.stack([[
        naive_heatmap(x, y, side, side, stride, sigma)
        for x, y in s.landmarks.tolist()
    ] for s in samples])
    weights = np.stack([[naive_weights(m, weight, threshold) for m in row]
                        for row in maps])
    return torch.from_numpy(maps), torch.from_numpy(weights)


def total(losses):
    return sum(v for k, v in losses.items() if k.startswith('loss'))


# ----------------------------------------------------------------------------
# The naive official step, written from the formulas of the LA-Net code.
# ----------------------------------------------------------------------------


def naive_awing(pred, target, alpha=2.1, omega=14.0, eps=1.0, theta=0.5):
    diff = (target - pred).abs()
    power = alpha - target
    a = omega * (1 / (1 +
                      (theta / eps)**power)) * power * (theta / eps)**(power -
                                                                       1) / eps
    c = theta * a - omega * torch.log(1 + (theta / eps)**power)
    return torch.where(diff < theta,
                       omega * torch.log(1 + (diff / eps)**power),
                       a * diff - c)


def naive_scores(scorer, feats):
    """c_ij of the official ``score``: MLP of [h_i[:D/2], h_j[D/2:]]."""
    h = F.linear(feats, scorer.fc_in.weight, scorer.fc_in.bias)
    half = h.size(1) // 2
    layers = [scorer.pair_fc, scorer.mlp[1], scorer.mlp[3]]
    rows = []
    for i in range(h.size(0)):
        row = []
        for j in range(h.size(0)):
            x = torch.cat([h[i, :half], h[j, half:]])
            for n, layer in enumerate(layers):
                x = F.linear(x, layer.weight, layer.bias)
                if n < len(layers) - 1:
                    x = x.relu()
            row.append(x.softmax(dim=0)[0])
        rows.append(torch.stack(row))
    return torch.stack(rows)


def naive_distribution(feats, scorer, probs, k):
    """d_i = sum_j w_ij softmax(z_j) over the top-k cosine neighbours."""
    num = feats.size(0)
    scores = naive_scores(scorer, feats)
    out = []
    for i in range(num):
        sims = []
        for j in range(num):
            sims.append(-1.0 if i == j else F.cosine_similarity(
                feats[i].detach(), feats[j].detach(), dim=0).item())
        nbrs = sorted(range(num), key=lambda j: -sims[j])[:k]
        mask = torch.zeros(num, dtype=feats.dtype)
        mask[nbrs] = 1
        cm = scores[i] * mask
        w = (cm + 1e-8 / num) / (cm.sum() + 1e-8)
        out.append(sum(w[j] * probs[j] for j in range(num)))
    return torch.stack(out)


def naive_el(query, key, queue, queue_labels, labels):
    """The official ``_cal``: queue negatives, same-label in-batch
    positives."""
    num = query.size(0)
    loss = 0
    for i in range(num):
        neg = query[i] @ queue / TEMPERATURE
        neg = torch.where(queue_labels == labels[i],
                          torch.full_like(neg, -1e10), neg)
        terms = []
        for j in range(num):
            if labels[j] == labels[i]:
                logits = torch.cat([(query[i] @ key[j] / TEMPERATURE)[None],
                                    neg])
                terms.append(-logits.log_softmax(dim=0)[0])
        loss = loss + sum(terms) / len(terms)
    return loss / num


def naive_project(head, x):
    """``Linear -> ReLU -> Linear`` from the head's state dict."""
    sd = head.state_dict(keep_vars=True)
    return F.linear(
        F.linear(x, sd['0.weight'], sd['0.bias']).relu(), sd['2.weight'],
        sd['2.bias'])


def ema_copy(online, key):
    """The key module after ``theta_k <- m theta_k + (1 - m) theta_q`` with
    buffers copied, matched by state-dict name."""
    key = copy.deepcopy(key)
    params = {n for n, _ in key.named_parameters(remove_duplicate=False)}
    q, k = online.state_dict(), key.state_dict()
    key.load_state_dict({
        n:
        MOMENTUM * k[n] + (1 - MOMENTUM) * q[n] if n in params else q[n]
        for n in k
    })
    return key


def naive_step(ref, inputs, samples):
    """Losses of one official LA-Net step on ``ref`` (a model copy) and the
    queue, history and momentum state it leaves.

    The momentum update comes first: the official code runs it in the loss
    call, before the key forward; mmfer runs it after the previous
    optimiser step (``update_teacher``), which gives the same weights. Its
    buffers are then copied from the online modules before this step's
    online forward (the official code copies them after it): BatchNorm
    running statistics the train-mode key forward does not use."""
    idx = [s.sample_idx for s in samples]
    labels = torch.cat([s.gt_label for s in samples])
    enc = {
        name: ema_copy(getattr(ref, name), ref.momentum_encoder.module[name])
        for name in ('backbone', 'landmark_neck', 'expression_projector',
                     'landmark_projector')
    }
    expr, lm = ref.backbone(inputs)
    u = expr[-1].mean(dim=(2, 3))
    heatmaps, fused = ref.landmark_neck(lm)
    v = fused.mean(dim=(2, 3))
    z = F.linear(u, ref.head.fc.weight, ref.head.fc.bias)
    probs = z.softmax(dim=1)
    scorers = ref.label_distribution.scorers
    d = (naive_distribution(u, scorers[0], probs, K) +
         naive_distribution(v, scorers[1], probs, K)) / 2

    history = ref.label_history.rows.clone()
    seen = ref.label_history.seen.clone()
    rows = torch.stack([
        history[i] if i < len(seen) and seen[i] else F.one_hot(
            labels[n], NUM_CLASSES).to(d.dtype) for n, i in enumerate(idx)
    ])
    t = HISTORY_M * rows + (1 - HISTORY_M) * d
    new_rows = HISTORY_M * rows + (1 - HISTORY_M) * d.detach()

    with torch.no_grad():
        kexpr, klm = enc['backbone'](inputs)
        _, kfused = enc['landmark_neck'](klm)
        key_u = F.normalize(
            naive_project(enc['expression_projector'],
                          kexpr[-1].mean(dim=(2, 3))),
            dim=1)
        key_v = F.normalize(
            naive_project(enc['landmark_projector'], kfused.mean(dim=(2, 3))),
            dim=1)
    query_u = F.normalize(naive_project(ref.expression_projector, u), dim=1)
    query_v = F.normalize(naive_project(ref.landmark_projector, v), dim=1)
    conf, yhat = t.detach().max(dim=1)
    yhat = torch.tensor([
        -i if c < CONFIDENCE else int(y)
        for i, c, y in zip(idx, conf.tolist(), yhat.tolist())
    ])
    el = naive_el(query_u, key_v, ref.queue.v, ref.queue.labels, yhat) + \
        naive_el(query_v, key_u, ref.queue.u, ref.queue.labels, yhat)

    target, weight = naive_targets(samples)
    log_p = z.log_softmax(dim=1)
    losses = dict(
        loss_cls=-log_p[torch.arange(len(idx)), labels].mean(),
        loss_landmark=WEIGHTS['landmark'] *
        (naive_awing(heatmaps, target) * weight).mean(),
        loss_kl=WEIGHTS['kl'] * (t * (t.log() - log_p)).sum() / len(idx),
        loss_contrastive=WEIGHTS['contrastive'] * el)
    state = dict(
        new_rows=new_rows,
        key_u=key_u,
        key_v=key_v,
        yhat=yhat,
        momentum={
            n: m.state_dict()
            for n, m in enc.items()
        })
    return losses, state


def make_state_nontrivial(model, indices):
    """Momentum encoder away from the online net, a half-filled history with
    unsure rows, a queue holding labels of the batch, a moved pointer."""
    gen = torch.Generator().manual_seed(7)
    dtype = model.queue.u.dtype
    with torch.no_grad():
        for p in model.momentum_encoder.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=dtype))
        size = max(indices) + 3
        model.label_history.rows = torch.zeros(size, NUM_CLASSES, dtype=dtype)
        model.label_history.seen = torch.zeros(size, dtype=torch.bool)
        for n, i in enumerate(indices[:BATCH // 2]):
            if n % 2:  # a sure row: max 0.83
                row = F.one_hot(torch.tensor(n), NUM_CLASSES) * 0.8 + 0.2 / 7
            else:  # an unsure row: near uniform
                row = (0.5 *
                       torch.randn(NUM_CLASSES, generator=gen)).softmax(0)
            model.label_history.rows[i] = row
            model.label_history.seen[i] = True
        model.queue.u.copy_(
            F.normalize(
                torch.randn(model.queue.u.shape, generator=gen, dtype=dtype),
                dim=0))
        model.queue.v.copy_(
            F.normalize(
                torch.randn(model.queue.v.shape, generator=gen, dtype=dtype),
                dim=0))
        labels = [0, 1, 3, -indices[2], -1e10, 2, 0, 5]
        model.queue.labels.copy_(
            torch.tensor(labels * (QUEUE // len(labels)), dtype=dtype))
        model.queue.ptr.fill_(BATCH)


def test_training_step_matches_official_formulas():
    model = build().double()
    indices = [0, 3, 5, 9, 12, 20, 21, 30]
    # sample 0 (index 0) is unsure, so its official id -0 collides with
    # class 0, the label of the first-visit sample 5
    labels = [4, 2, 6, 1, 0, 5, 3, 0]
    make_state_nontrivial(model, indices)
    inputs, samples = make_batch(
        indices=indices, labels=labels, dtype=torch.float64)
    ref = copy.deepcopy(model)

    model.update_teacher()  # MeanTeacherHook's, after the previous step
    losses = model.loss(inputs, samples)
    expected, state = naive_step(ref, inputs, samples)
    assert set(losses) == set(expected)
    for name in expected:
        torch.testing.assert_close(losses[name], expected[name], msg=name)
    assert (state['yhat'] < 0).any() and (state['yhat'] == 0).sum() >= 2

    total(losses).backward()
    total(expected).backward()
    ref_params = dict(ref.named_parameters())
    checked = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:
            assert name.startswith('momentum_encoder.')
            continue
        torch.testing.assert_close(param.grad, ref_params[name].grad, msg=name)
        checked += 1
    assert checked == sum(p.requires_grad for p in ref.parameters())
    for scorer in model.label_distribution.scorers:
        assert scorer.fc_in.weight.grad.abs().sum() > 0

    # the state the step leaves
    torch.testing.assert_close(model.label_history.rows[indices],
                               state['new_rows'])
    assert bool(model.label_history.seen[indices].all())
    torch.testing.assert_close(model.queue.u[:, BATCH:2 * BATCH],
                               state['key_u'].t())
    torch.testing.assert_close(model.queue.v[:, BATCH:2 * BATCH],
                               state['key_v'].t())
    torch.testing.assert_close(model.queue.labels[BATCH:2 * BATCH],
                               state['yhat'].double())
    assert int(model.queue.ptr) == 2 * BATCH
    for name, sd in state['momentum'].items():
        encoder = model.momentum_encoder.module[name]
        for key, value in encoder.state_dict().items():
            torch.testing.assert_close(value, sd[key], msg=f'{name}.{key}')


def test_history_bank_first_visit_update_and_growth():
    model = build()
    d1 = torch.rand(2, NUM_CLASSES).softmax(1).requires_grad_()
    t1 = model.label_history(torch.tensor([2, 5]), torch.tensor([1, 3]), d1)
    onehot = F.one_hot(torch.tensor([1, 3]), NUM_CLASSES).float()
    torch.testing.assert_close(t1, 0.9 * onehot + 0.1 * d1)
    (grad, ) = torch.autograd.grad(t1.sum(), d1)
    torch.testing.assert_close(grad, torch.full_like(grad, 0.1))
    assert model.label_history.rows.shape == (6, NUM_CLASSES)
    assert model.label_history.seen.tolist() == [
        False, False, True, False, False, True
    ]
    torch.testing.assert_close(model.label_history.rows[[2, 5]], t1.detach())
    row5 = t1.detach()[1]

    # a second visit blends with the stored row; growth doubles the bank
    d2 = torch.rand(2, NUM_CLASSES).softmax(1)
    t2 = model.label_history(torch.tensor([5, 7]), torch.tensor([0, 6]), d2)
    torch.testing.assert_close(t2[0], 0.9 * row5 + 0.1 * d2[0])
    torch.testing.assert_close(
        t2[1],
        0.9 * F.one_hot(torch.tensor(6), NUM_CLASSES).float() + 0.1 * d2[1])
    assert model.label_history.rows.shape == (12, NUM_CLASSES)
    torch.testing.assert_close(model.label_history.rows[2], t1.detach()[0])

    # a sample drawn twice reads its old row twice; the last update stays
    row5 = model.label_history.rows[5].clone()
    d3 = torch.rand(2, NUM_CLASSES).softmax(1)
    t3 = model.label_history(torch.tensor([5, 5]), torch.tensor([0, 0]), d3)
    torch.testing.assert_close(t3, 0.9 * row5 + 0.1 * d3)
    torch.testing.assert_close(model.label_history.rows[5], t3[1])

    model.label_history(
        torch.tensor([40]), torch.tensor([2]),
        torch.rand(1, NUM_CLASSES).softmax(1))
    assert model.label_history.rows.shape == (41, NUM_CLASSES)
    assert model.label_history.seen.sum() == 4


def test_history_bank_state_dict_round_trip():
    model = build()
    model.label_history(
        torch.tensor([3, 17]), torch.tensor([1, 4]),
        torch.rand(2, NUM_CLASSES).softmax(1))
    state = model.state_dict()
    assert state['label_history.rows'].shape == (18, NUM_CLASSES)

    fresh = build()  # empty bank
    load_state_dict(fresh, state, strict=True)
    torch.testing.assert_close(fresh.label_history.rows,
                               model.label_history.rows)
    assert torch.equal(fresh.label_history.seen, model.label_history.seen)

    larger = build()
    larger.label_history(
        torch.tensor([60]), torch.tensor([0]),
        torch.rand(1, NUM_CLASSES).softmax(1))
    larger.load_state_dict(state)
    torch.testing.assert_close(larger.label_history.rows,
                               model.label_history.rows)
    assert torch.equal(larger.label_history.seen, model.label_history.seen)


def test_momentum_encoder_copy_update_and_buffers():
    model = build()
    online = {
        n: getattr(model, n)
        for n in ('backbone', 'landmark_neck', 'expression_projector',
                  'landmark_projector')
    }
    for name, module in online.items():
        key = model.momentum_encoder.module[name].state_dict()
        for k, value in module.state_dict().items():
            assert torch.equal(key[k], value), f'{name}.{k}'
    assert not any(p.requires_grad
                   for p in model.momentum_encoder.parameters())

    probe = torch.randn(4, 3, SIZE, SIZE)
    with torch.no_grad():
        keys = model.encode(probe, momentum=True)[1:]
        # an optimiser step and new BN statistics
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
        model.encode(torch.randn(4, 3, SIZE, SIZE))
        # the copy shares nothing with the online modules (e.g. the stem
        # shared by the towers is the copy's own)
        for new, old in zip(model.encode(probe, momentum=True)[1:], keys):
            torch.testing.assert_close(new, old)
    before = {
        n: copy.deepcopy(m.state_dict())
        for n, m in model.momentum_encoder.module.items()
    }
    model.update_teacher()
    copied = 0
    for name, module in online.items():
        params = {
            n
            for n, _ in module.named_parameters(remove_duplicate=False)
        }
        after = model.momentum_encoder.module[name].state_dict()
        for k, q in module.state_dict().items():
            if k in params:
                expected = MOMENTUM * before[name][k] + (1 - MOMENTUM) * q
            else:
                expected = q
                copied += not torch.equal(before[name][k], q)
            torch.testing.assert_close(after[k], expected, msg=f'{name}.{k}')
    assert copied > 0  # the BN statistics did change


def test_queue_enqueue_wraps_and_checks_batch_size():
    model = build()
    keys = [
        F.normalize(torch.randn(BATCH, FPN_CHANNELS), dim=1) for _ in range(5)
    ]
    for n, k in enumerate(keys):
        model.queue.enqueue(k, -k, torch.full((BATCH, ), float(n)))
        assert int(model.queue.ptr) == (n + 1) * BATCH % QUEUE
    expected = torch.cat([keys[4]] + keys[1:4]).t()
    torch.testing.assert_close(model.queue.u, expected)
    torch.testing.assert_close(model.queue.v, -expected)
    assert model.queue.labels.tolist() == [
        float(n) for n in (4, 1, 2, 3) for _ in range(BATCH)
    ]
    with pytest.raises(ValueError, match=r'queue_size=32.*batch size 12'):
        model.queue.enqueue(
            torch.zeros(12, FPN_CHANNELS), torch.zeros(12, FPN_CHANNELS),
            torch.zeros(12))
    with pytest.raises(ValueError, match='drop_last'):
        model.queue.enqueue(
            torch.zeros(16, FPN_CHANNELS), torch.zeros(16, FPN_CHANNELS),
            torch.zeros(16))


def test_fresh_queue_is_normalised_and_empty():
    model = build()
    assert model.queue.u.shape == (FPN_CHANNELS, QUEUE)
    torch.testing.assert_close(model.queue.v.norm(dim=0), torch.ones(QUEUE))
    assert (model.queue.labels == -1e10).all()
    with pytest.raises(ValueError, match='ambiguous_ids'):
        build(ambiguous_ids='negative')


@pytest.mark.parametrize('mode,ids', [('official', [2, 0, -4, -11, 2]),
                                      ('unique', [2, -1, -5, -12, 2])])
def test_ambiguous_ids(mode, ids):
    model = build(ambiguous_ids=mode)
    # below the threshold 0.7 only the maxima 0.5, 0.5 and 0.6 lie; the last
    # row is exactly at it: confident
    targets = torch.tensor([[0.05, 0.05, 0.9], [0.5, 0.3, 0.2],
                            [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]],
                           dtype=torch.float64)
    indices = torch.tensor([0, 0, 4, 11, 9])
    assert model.queue.pseudo_labels(targets, indices).tolist() == ids


def test_predict_runs_only_the_expression_path():
    model = build()
    model.eval()
    inputs, _ = make_batch()
    calls = {'conv': 0, 'other': 0}

    def count_conv(module, args, output):
        calls['conv'] += 1

    def count_other(module, args, output):
        calls['other'] += 1

    handles = [
        m.register_forward_hook(count_conv) for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    handles += [
        m.register_forward_hook(count_other)
        for m in (model.landmark_neck, model.label_distribution,
                  model.expression_projector,
                  *model.momentum_encoder.module.values())
    ]
    with torch.no_grad():
        plain = model.head(
            model.neck(model.backbone.forward_expression(inputs)))
        calls['conv'] = 0
        logits = model(inputs, mode='tensor')
        tensor_convs = calls['conv']
        preds = model(inputs, mode='predict')
        feats = model.extract_feat(inputs)
    for h in handles:
        h.remove()
    torch.testing.assert_close(logits, plain)
    torch.testing.assert_close(
        torch.stack([p.pred_score for p in preds]), plain.softmax(dim=1))
    assert feats[-1].shape == (BATCH, WIDTH * 8)
    assert tensor_convs == RESNET18_CONVS
    assert calls['conv'] == 3 * RESNET18_CONVS
    assert calls['other'] == 0


def test_eac_head_trains_on_the_mirrored_view():
    model = build(head='eac')
    inputs, samples = make_batch()
    ref = copy.deepcopy(model)
    mirrored = []
    forward_expression = model.backbone.forward_expression

    def spy(x):
        feats = forward_expression(x)
        feats[-1].retain_grad()
        mirrored.append((x, feats))
        return feats

    model.backbone.forward_expression = spy
    losses = model.loss(inputs, samples)
    assert {
        'loss_cls', 'loss_att', 'loss_landmark', 'loss_kl', 'loss_contrastive'
    } <= set(losses)
    assert len(mirrored) == 1
    torch.testing.assert_close(mirrored[0][0], flip_width(inputs))

    expr, _ = ref.backbone(inputs)
    view2 = ref.backbone.forward_expression(flip_width(inputs))
    expected = ref.head.loss(expr, samples, view2_feats=view2)
    torch.testing.assert_close(losses['loss_att'], expected['loss_att'])
    torch.testing.assert_close(losses['loss_cls'], expected['loss_cls'])
    losses['loss_att'].backward()
    assert mirrored[0][1][-1].grad.abs().sum() > 0


def test_samples_without_landmarks_are_masked():
    model = build()
    valid = [True, True, False, True, True, False, True, True]
    inputs, samples = make_batch(valid=valid)
    _, garbage = make_batch(seed=5, valid=valid)
    other = list(samples)
    for n in (2, 5):  # other points for the samples without landmarks
        other[n] = copy.deepcopy(samples[n])
        other[n].landmarks = garbage[n].landmarks
    assert not torch.equal(other[2].landmarks, samples[2].landmarks)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        heatmaps = copy.deepcopy(model).encode(inputs)[3]
    losses = model.loss(inputs, samples)
    other_losses = twin.loss(inputs, other)
    torch.testing.assert_close(losses['loss_landmark'],
                               other_losses['loss_landmark'])
    keep = torch.tensor(valid)
    target, weight = naive_targets(samples)
    # equal-sized samples: the mean of per-sample means is the mean
    expected = (naive_awing(heatmaps[keep], target[keep]) *
                weight[keep]).mean()
    torch.testing.assert_close(losses['loss_landmark'], expected)
    everything = (naive_awing(heatmaps, target) * weight).mean()
    assert not torch.isclose(expected, everything)


def test_batch_without_landmarks_has_zero_landmark_loss():
    model = build()
    inputs, samples = make_batch()
    _, without = make_batch(valid=[False] * BATCH)
    twin = copy.deepcopy(model)
    losses = model.loss(inputs, samples)
    none = twin.loss(inputs, without)
    assert float(none['loss_landmark']) == 0.0
    assert none['loss_landmark'].requires_grad
    assert float(losses['loss_landmark']) > 0
    for name in ('loss_cls', 'loss_kl', 'loss_contrastive'):
        torch.testing.assert_close(losses[name], none[name], msg=name)


def test_missing_sample_index_or_landmarks_is_explained():
    model = build()
    inputs, samples = make_batch()
    bare = []
    for s in samples:
        sample = DataSample().set_gt_label(int(s.gt_label))
        for name in ('landmarks', 'has_landmarks'):
            sample.set_field(s.get(name), name)
        bare.append(sample)
    with pytest.raises(KeyError, match='sample_idx'):
        model.loss(inputs, bare)
    for s in samples:
        del s.landmarks
    with pytest.raises(KeyError, match='LandmarkTargets'):
        copy.deepcopy(model).loss(inputs, samples)


def test_heatmap_constants_are_the_models():
    """The ``heatmap`` argument reaches the renderer: other constants give
    the naive targets of those constants."""
    heatmap = dict(sigma=1.0, weight=5.0, threshold=0.5)
    model = build(heatmap=heatmap)
    assert model.heatmap == dict(stride=4, **heatmap)
    inputs, samples = make_batch()
    with torch.no_grad():
        heatmaps = copy.deepcopy(model).encode(inputs)[3]
    losses = model.loss(inputs, samples)
    target, weight = naive_targets(samples, **heatmap)
    torch.testing.assert_close(losses['loss_landmark'],
                               (naive_awing(heatmaps, target) * weight).mean())
    official = (naive_awing(heatmaps, naive_targets(samples)[0]) *
                naive_targets(samples)[1]).mean()
    assert not torch.isclose(losses['loss_landmark'], official)


def test_heatmap_size_and_count_mismatches_are_explained():
    inputs, samples = make_batch()
    # stride-4 FPN maps against targets at input size / 8
    model = build(heatmap=dict(stride=8))
    history = model.label_history.rows.clone()
    with pytest.raises(ValueError, match=r'heatmap stride 8 = \(4, 4\)'):
        model.loss(inputs, samples)
    # the bad batch changed no state
    assert torch.equal(model.label_history.rows, history)
    assert int(model.queue.ptr) == 0
    for s in samples:
        s.landmarks = s.landmarks[:NUM_LANDMARKS - 1]
    with pytest.raises(ValueError, match='LandmarkTargets.num_landmarks'):
        build().loss(inputs, samples)
    with pytest.raises(ValueError, match='unknown keys'):
        build(heatmap=dict(radius=3))
    with pytest.raises(ValueError, match='positive int'):
        build(heatmap=dict(stride=2.5))


def test_convnext_towers_plug_in_by_config():
    """Another backbone with multi-scale maps (ConvNeXt) trains and predicts
    through the same system: only the config changes."""
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='LANetClassifier',
            backbone=dict(
                type='ExpressionLandmarkBackbone',
                backbone=dict(
                    type='ConvNeXt',
                    arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                    out_indices=(0, 1, 2, 3),
                    gap_before_final_norm=False)),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(
                type='LinearClsHead', num_classes=NUM_CLASSES,
                in_channels=64),
            landmark_neck=dict(
                type='LandmarkFPN',
                out_channels=FPN_CHANNELS,
                num_landmarks=NUM_LANDMARKS),
            label_distribution=dict(type='LabelDistributionEstimator', k=K),
            queue_size=QUEUE))
    model.init_weights()
    inputs, samples = make_batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {
        'loss_cls', 'loss_landmark', 'loss_kl', 'loss_contrastive'
    }
    total(losses).backward()
    towers = model.backbone
    for tower in (towers.expr_tower, towers.lm_tower):
        grads = [p.grad for n, p in tower.named_parameters()
                 if n.startswith('stages.3')]
        assert grads and all(g is not None and g.abs().sum() > 0
                             for g in grads)
    predictions = model.predict(inputs)
    assert len(predictions) == BATCH
    assert predictions[0].pred_score.shape == (NUM_CLASSES, )


def test_updating_after_each_step_equals_the_official_order():
    """The official code updates the momentum encoder at the start of each
    loss call, MeanTeacherHook after each optimiser step: with one step per
    iteration every step's losses, keys, bank and queues are the same, bit
    for bit (float64), the official first update being a no-op."""
    runs = {}
    for order in ('official', 'after_step'):
        model = build(momentum=0.9).double()
        optim = torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=0.05)
        losses, queues = [], []
        for step in range(3):
            inputs, samples = make_batch(seed=step, dtype=torch.float64)
            if order == 'official':
                model.update_teacher()
            out = model.loss(inputs, samples)
            losses.append({k: v.detach() for k, v in out.items()})
            queues.append(model.queue.u.clone())
            total(out).backward()
            optim.step()
            optim.zero_grad()
            if order == 'after_step':
                model.update_teacher()
        runs[order] = dict(losses=losses, queues=queues, model=model)
    official, ours = runs['official'], runs['after_step']
    for step in range(3):
        for name, value in official['losses'][step].items():
            assert torch.equal(ours['losses'][step][name], value), (step, name)
        assert torch.equal(ours['queues'][step], official['queues'][step])
    state = official['model'].state_dict()
    for key, value in ours['model'].state_dict().items():
        if not key.startswith('momentum_encoder.'):
            assert torch.equal(value, state[key]), key
    # the encoder moved: a missing or misplaced update would show in the
    # keys of steps 2 and 3
    start = build().double().momentum_encoder.module.state_dict()
    moved = ours['model'].momentum_encoder.module.state_dict()
    assert not torch.allclose(moved['backbone.expr_tower.conv1.weight'],
                              start['backbone.expr_tower.conv1.weight'])


# Checkpoints saved before the bank, the queues and the momentum encoder
# were parts (checked against that code's state dict): new key -> old key.
OLD_KEYS = {
    'label_history.rows': 'label_history',
    'label_history.seen': 'history_seen',
    'queue.u': 'queue_u',
    'queue.v': 'queue_v',
    'queue.labels': 'queue_labels',
    'queue.ptr': 'queue_ptr',
}


def old_checkpoint(state):
    old = {}
    for key, value in state.items():
        if key == 'momentum_encoder.steps':
            continue
        key = OLD_KEYS.get(key, key).replace('momentum_encoder.module.',
                                             'momentum_encoder.')
        old[key] = value
    return old


@pytest.mark.parametrize('loader', ['torch', 'mmengine'])
def test_checkpoints_of_the_single_class_lanet_load(loader):
    model = build()
    inputs, samples = make_batch()
    model.loss(inputs, samples)
    model.update_teacher()
    state = model.state_dict()
    old = old_checkpoint(state)
    assert {
        'label_history', 'history_seen', 'queue_u', 'queue_ptr',
        'momentum_encoder.backbone.expr_tower.conv1.weight',
        'momentum_encoder.landmark_projector.2.bias'
    } <= set(old)
    # and mmfer's heatmap conv had a bias then (the official one has none)
    num_landmarks = model.landmark_neck.num_landmarks
    old['landmark_neck.heatmap_conv.bias'] = torch.ones(num_landmarks)
    old['momentum_encoder.landmark_neck.heatmap_conv.bias'] = torch.ones(
        num_landmarks)
    fresh = build()
    with torch.no_grad():
        for value in fresh.state_dict().values():
            value.zero_()
    if loader == 'torch':
        fresh.load_state_dict(old)  # strict
    else:
        load_state_dict(fresh, old, strict=True)
    loaded = fresh.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        if key != 'momentum_encoder.steps':
            assert torch.equal(loaded[key], value), key
    # any count above 0 averages from here on, as the old encoder did
    assert int(loaded['momentum_encoder.steps']) == 1


def test_a_plain_backbone_builds_the_same_model():
    """The one-line form (a plain backbone, the towers' arguments, no
    in_channels) builds the model of the ExpressionLandmarkBackbone form."""
    wrapped = build()
    torch.manual_seed(0)
    plain = MODELS.build(
        dict(
            type='LANetClassifier',
            backbone=dict(
                type='ResNet',
                depth=18,
                base_channels=WIDTH,
                stem_channels=WIDTH),
            towers=dict(num_shared_stages=1),
            landmark_neck=dict(
                type='LandmarkFPN',
                out_channels=FPN_CHANNELS,
                num_landmarks=NUM_LANDMARKS),
            head=dict(
                type='LinearClsHead', num_classes=NUM_CLASSES,
                init_cfg=None),
            neck=dict(type='GlobalAveragePooling'),
            label_distribution=dict(type='LabelDistributionEstimator', k=K),
            queue_size=QUEUE))
    plain.init_weights()
    assert plain.head.fc.in_features == WIDTH * 8
    a, b = wrapped.state_dict(), plain.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(ValueError, match='towers'):
        build(towers=dict(num_shared_stages=2))
