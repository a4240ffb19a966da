"""pirl_loss against a direct, independent transcription of the paper's equations."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vissl_pirl_plugin.utils.distributed_checks import agree_on_failures
from vissl_pirl_plugin.losses import pirl_loss
from vissl_pirl_plugin.losses.nce import nce_loss
from vissl_pirl_plugin.losses.negative_sampling import (
    sample_per_sample_negatives,
    sample_shared_negatives,
)
from vissl_pirl_plugin.losses.pirl_loss import PIRLLoss

DATASET, DIM, NEGATIVES, TAU = 40, 8, 10, 0.07


def reference_nce(query, bank, positive, negatives, z):
    """Paper Eq. 3-4 for one query: P = exp(s/tau)/Z, h = P/(P + N/|D|)."""
    def h(a, b):
        p = math.exp(float(F.cosine_similarity(a, b, dim=0)) / TAU) / z
        return p / (p + NEGATIVES / DATASET)
    loss = -math.log(h(bank[positive], query))
    for negative in negatives:
        loss -= math.log(1.0 - h(query, bank[negative]))
    return loss


def reference_infonce(query, bank, positive, negatives):
    pos = math.exp(float(F.cosine_similarity(query, bank[positive], dim=0)) / TAU)
    neg = sum(math.exp(float(F.cosine_similarity(query, bank[n], dim=0)) / TAU) for n in negatives)
    return -math.log(pos / (pos + neg))


def make_loss(**kwargs) -> PIRLLoss:
    params = dict(num_train_samples=DATASET, num_negatives=NEGATIVES, temperature=TAU,
                  embedding_dim=DIM)
    params.update(kwargs)
    return PIRLLoss(**params)


def draw_negatives(sampling, indices, seed):
    torch.manual_seed(seed)
    sampler = sample_shared_negatives if sampling == "shared" else sample_per_sample_negatives
    negatives = sampler(indices, DATASET, NEGATIVES)
    return [negatives.tolist()] * len(indices) if sampling == "shared" else negatives.tolist()


@pytest.mark.parametrize("sampling", ["per_sample", "shared"])
@pytest.mark.parametrize("loss_type", ["nce", "infonce"])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_loss_matches_paper_equations(sampling, loss_type, lam):
    loss = make_loss(lambda_weight=lam, loss_type=loss_type, negative_sampling=sampling,
                     norm_constant=3.0 if loss_type == "nce" else -1)
    g, f = torch.randn(5, DIM), torch.randn(5, DIM)
    indices = torch.tensor([3, 17, 0, 39, 8])
    negatives = draw_negatives(sampling, indices, seed=7)
    torch.manual_seed(7)
    value = float(loss([g, f], indices))

    bank = loss.memory_bank.embeddings
    expected = 0.0
    for i, positive in enumerate(indices.tolist()):
        for weight, query in ((lam, g[i]), (1 - lam, f[i])):
            if loss_type == "nce":
                term = reference_nce(query, bank, positive, negatives[i], z=3.0)
            else:
                term = reference_infonce(query, bank, positive, negatives[i])
            expected += weight * term / len(indices)
    assert value == pytest.approx(expected, rel=1e-4)


def test_norm_constant_estimated_once_from_first_batch():
    loss = make_loss(lambda_weight=0.5)
    g, f = torch.randn(4, DIM), torch.randn(4, DIM)
    indices = torch.tensor([1, 2, 3, 4])
    negatives = draw_negatives("per_sample", indices, seed=3)
    torch.manual_seed(3)
    loss([g, f], indices)
    bank = loss.memory_bank.embeddings
    exps = []  # first term (g) scores: positive and negatives of every sample
    for i, positive in enumerate(indices.tolist()):
        for j in [positive] + negatives[i]:
            exps.append(math.exp(float(F.cosine_similarity(g[i], bank[j], dim=0)) / TAU))
    assert loss.norm_constant == pytest.approx(sum(exps) / len(exps) * DATASET, rel=1e-4)
    loss([torch.randn(4, DIM), torch.randn(4, DIM)], indices)
    assert loss.norm_constant == pytest.approx(sum(exps) / len(exps) * DATASET, rel=1e-4)


def test_lambda_zero_is_npid_and_drops_g():
    """lambda = 0: only L_NCE(m_I, f(v_I)) remains, as in NPID. g gets an all-zero gradient, so
    that DistributedDataParallel sees its head used."""
    g = torch.randn(3, DIM, requires_grad=True)
    f = torch.randn(3, DIM, requires_grad=True)
    indices = torch.tensor([5, 6, 7])
    loss = make_loss(lambda_weight=0.0, norm_constant=2.0)
    torch.manual_seed(0)
    two_inputs = loss([g, f], indices)
    two_inputs.backward()
    assert torch.equal(g.grad, torch.zeros_like(g)) and f.grad.abs().sum() > 0
    torch.manual_seed(0)
    npid = make_loss(lambda_weight=0.0, norm_constant=2.0)(f, indices)  # single-output NPID model
    assert float(npid.detach()) == pytest.approx(float(two_inputs.detach()))


def test_lambda_one_drops_f():
    g = torch.randn(3, DIM, requires_grad=True)
    f = torch.randn(3, DIM, requires_grad=True)
    make_loss(lambda_weight=1.0, norm_constant=2.0)([g, f], torch.tensor([5, 6, 7])).backward()
    assert torch.equal(f.grad, torch.zeros_like(f)) and g.grad.abs().sum() > 0


def test_single_output_needs_lambda_zero():
    with pytest.raises(ValueError, match="lambda_weight=0"):
        make_loss(lambda_weight=0.5)(torch.randn(2, DIM), torch.tensor([0, 1]))


def test_ignored_samples_are_left_out(monkeypatch):
    """Masked, not dropped: the ignored rows change nothing."""
    def negatives_of(positives, dataset_size, num_negatives):  # fixed per positive
        return (positives.view(-1, 1) + torch.arange(1, num_negatives + 1)) % dataset_size
    monkeypatch.setattr(pirl_loss, "sample_per_sample_negatives", negatives_of)
    g, f = torch.randn(4, DIM), torch.randn(4, DIM)
    loss = make_loss(norm_constant=2.0)
    full = loss([g[[0, 2]], f[[0, 2]]], torch.tensor([10, 12]))
    masked = loss([g, f], torch.tensor([10, -1, 12, -1]))
    assert float(masked) == pytest.approx(float(full), rel=1e-6)


def test_all_ignored_batch_gives_zero_loss_with_graph():
    g = torch.randn(2, DIM, requires_grad=True)
    value = make_loss(norm_constant=2.0)([g, torch.randn(2, DIM)], torch.tensor([-1, -1]))
    value.backward()
    assert float(value.detach()) == 0.0 and g.grad is not None


@pytest.mark.parametrize("sampler", [sample_per_sample_negatives, sample_shared_negatives])
def test_negatives_never_include_the_positive(sampler):
    torch.manual_seed(0)
    positives = torch.tensor([0, 4, 9, 4])
    drawn = sampler(positives, 10, 2000)
    if drawn.dim() == 1:  # shared: excludes every positive of the batch
        assert not set(drawn.tolist()) & {0, 4, 9}
        assert set(drawn.tolist()) == set(range(10)) - {0, 4, 9}
    else:
        for positive, row in zip(positives.tolist(), drawn.tolist()):
            assert positive not in row
            assert set(row) == set(range(10)) - {positive}  # every other index is reachable


def test_per_sample_negatives_are_uniform():
    torch.manual_seed(0)
    drawn = sample_per_sample_negatives(torch.tensor([3]), 6, 50000).view(-1)
    counts = torch.bincount(drawn, minlength=6).float()
    assert counts[3] == 0
    others = counts[[0, 1, 2, 4, 5]] / drawn.numel()
    assert torch.allclose(others, torch.full((5,), 0.2), atol=0.01)


def test_index_beyond_bank_is_a_clear_error_at_the_next_agreement():
    """Recorded without a host sync, raised by agree_on_failures (single process here)."""
    loss = make_loss(norm_constant=2.0)
    value = loss([torch.randn(2, DIM), torch.randn(2, DIM)], torch.tensor([1, 40]))
    assert torch.isfinite(value)  # the bad sample is masked meanwhile
    with pytest.raises(IndexError, match="Dataset index 40 is outside the memory bank at "
                                         "training step 3 on rank 0"):
        agree_on_failures(loss.memory_bank.failures, step=3)
    agree_on_failures(loss.memory_bank.failures, step=4)  # reported once


def test_non_finite_loss_is_recorded():
    loss = make_loss(norm_constant=2.0)
    loss([torch.full((2, DIM), float("nan")), torch.randn(2, DIM)], torch.tensor([1, 2]))
    with pytest.raises(FloatingPointError, match=r"Non-finite loss \(nan\) at training step 7"):
        agree_on_failures(loss.memory_bank.failures, step=7)


@pytest.mark.parametrize("loss_type", ["nce", "infonce"])
@pytest.mark.parametrize("sampling", ["per_sample", "shared"])
def test_loss_under_bf16_autocast_equals_the_fp32_loss(loss_type, sampling):
    """Scores and NCE stay fp32 under autocast; in bf16 they were off by about 1e-3."""
    queries = [torch.randn(8, DIM), torch.randn(8, DIM)]
    indices = torch.arange(8) * 3
    values = []
    for autocast in (False, True):
        loss = make_loss(loss_type=loss_type, negative_sampling=sampling, num_negatives=30)
        torch.manual_seed(0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            values.append(loss(queries, indices))
    assert values[1].dtype == torch.float32
    assert float(values[1]) == pytest.approx(float(values[0]), rel=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_negatives=DATASET), "must be smaller than the training dataset"),
    (dict(lambda_weight=1.5), "lambda_weight=1.5 must be in"),
    (dict(temperature=0.0), "temperature=0.0 must be > 0"),
    (dict(loss_type="softmax"), "loss_type='softmax'"),
    (dict(negative_sampling="hard"), "negative_sampling='hard'"),
    (dict(num_train_samples=-1), "num_train_samples=-1"),
])
def test_bad_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_loss(**kwargs)


def test_embedding_dim_mismatch_names_the_fix():
    with pytest.raises(ValueError, match="embedding_dim 8"):
        make_loss()([torch.randn(2, 16), torch.randn(2, 16)], torch.tensor([0, 1]))


def test_built_the_vissl_way():
    from classy_vision.losses import build_loss
    from vissl.config import AttrDict

    config = AttrDict({"name": "pirl_loss", "lambda_weight": 0.5, "temperature": 0.07,
                       "num_negatives": 16, "loss_type": "nce", "negative_sampling": "per_sample",
                       "norm_constant": -1, "ignore_index": -1, "num_train_samples": 100,
                       "memory_bank": {"embedding_dim": 32, "momentum": 0.5, "init_seed": 0}})
    loss = build_loss(config)
    assert isinstance(loss, PIRLLoss)
    assert loss.memory_bank.embeddings.shape == (100, 32)
    assert "memory_bank.embeddings" in loss.state_dict()
    assert "log_norm_constant" in loss.state_dict()


def test_the_bank_init_key_reaches_the_bank(monkeypatch):
    from classy_vision.losses import build_loss
    from vissl.config import AttrDict

    from vissl_pirl_plugin.losses import pirl_loss

    monkeypatch.setattr(pirl_loss, "get_world_size", lambda: 2)  # VISSL's rows: norm 1/sqrt(2)
    config = AttrDict({"name": "pirl_loss", "num_negatives": 16, "num_train_samples": 400,
                       "memory_bank": {"embedding_dim": 128, "init": "vissl_rank_mean"}})
    norms = build_loss(config).memory_bank.embeddings.norm(dim=1)
    assert norms.mean() == pytest.approx(2 ** -0.5, rel=0.05)


@pytest.mark.parametrize("dataset_size, num_negatives", [(1281167, 32000), (169, 128)])
def test_the_loss_is_vissls_less_its_epsilon_offset(dataset_size, num_negatives):
    """VISSL's NCECriterion adds float32 eps to its denominators P + N/|D|: its loss is ours
    plus about eps * |D| (0.153 at ImageNet size), which users comparing curves subtract."""
    from vissl.losses.nce_loss import NCECriterion

    torch.manual_seed(0)
    # cosines of random 128-d directions, as at the start of training, and its Z
    scores = (torch.randn(16, 1 + num_negatives, dtype=torch.float64) / 128 ** 0.5).clamp(-1, 1)
    log_z = torch.tensor(math.log(2.2 * dataset_size), dtype=torch.float64)
    ours = nce_loss(scores[:, 0], scores[:, 1:], 0.07, log_z, dataset_size).mean()
    probabilities = (scores / 0.07 - log_z).exp()  # VISSL's input: exp(s / tau) / Z
    vissl = NCECriterion(dataset_size)(probabilities, None)
    offset = float(np.finfo("float32").eps) * dataset_size
    assert float(vissl - ours) == pytest.approx(offset, rel=0.03)
