"""Channel Pruning (`cp`, He et al. 2017): the sampled patches, the LASSO, its bisection and the refit,
each against a literal reading, and the criterion through the conformance kit and a pruning chain."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from baselines.cp import contribution_gram, lasso_cd, lasso_select
from thinet.criteria import CriterionContext, check_criterion, run_criterion
from thinet.sampling import collect_patches, collect_samples, make_consumer
from thinet.types import LayerPair, PruneStep, num_kept


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def _images(n: int, seed: int, size: int = 8, channels: int = 3) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _randomise_bn(model: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model


def tiny_vgg() -> nn.Module:
    torch.manual_seed(0)
    return _randomise_bn(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(12, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    ))


def flat_head() -> nn.Module:
    """A Linear reading a flattened 8×2×2 map (S = 4 columns per channel)."""
    torch.manual_seed(0)
    return _randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                       nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 6)))


def _consumer_input(model: nn.Module, consumer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = consumer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model.eval()(images)
    handle.remove()
    return seen[0]


# --- collect_patches --------------------------------------------------------------------------------------

@pytest.mark.parametrize("conv", [dict(kernel_size=3, padding=1), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=(3, 2), dilation=(1, 2), padding=(1, 2)),
                                  dict(kernel_size=3, padding=1, padding_mode="reflect")])
def test_patches_rebuild_the_real_output_at_thinets_positions(conv: dict) -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 4, **conv)).eval()
    pair, batches = LayerPair("0", "2"), [_images(3, 1, 9), _images(2, 2, 9)]
    x, y = collect_patches(model, pair, batches, samples_per_image=7, seed=11)
    assert x.shape == (35, 5, model[2].kernel_size[0] * model[2].kernel_size[1]) and y.shape == (35, 4)
    weight = model[2].weight.detach().double().reshape(4, 5, -1)
    contributions = torch.einsum("mct,dct->mdc", x, weight)  # per channel, for every filter
    assert torch.allclose(contributions.sum(-1), y, atol=1e-12)
    # The same positions (and images) as ThiNet's samples: redraw them the way collect_samples does.
    x_hat = collect_samples(model, pair, batches, samples_per_image=7, seed=11).double()
    gen, row = torch.Generator().manual_seed(11), 0
    reference = copy.deepcopy(model[2]).double()
    for batch in batches:
        inputs = _consumer_input(model, model[2], batch).double()
        filters, rows, cols = make_consumer(model[2], "2", 5).draw(inputs, 7, gen)
        out = reference(inputs) - reference.bias.view(-1, 1, 1)
        for n in range(batch.shape[0]):
            for j in range(7):
                d, r, c = int(filters[n, j]), int(rows[n, j]), int(cols[n, j])
                assert torch.allclose(y[row], out[n, :, r, c], atol=1e-5)  # every filter, minus the bias
                assert torch.allclose(contributions[row, d], x_hat[row], atol=1e-5)  # ThiNet's x̂ at its filter
                assert abs(float(y[row, d] - x_hat[row].sum())) < 1e-5
                row += 1
    assert row == 35


def test_linear_patches_are_the_flattened_input_once_per_draw() -> None:
    model, pair = flat_head().eval(), LayerPair("0", "5")
    images = _images(4, 5)
    x, y = collect_patches(model, pair, images, samples_per_image=3, seed=2)
    assert x.shape == (12, 8, 4) and y.shape == (12, 6)
    feats = _consumer_input(model, model[5], images).double()
    assert torch.equal(x, feats.view(4, 1, 8, 4).expand(-1, 3, -1, -1).reshape(12, 8, 4))
    assert torch.allclose(y + model[5].bias.double(), model[5].double()(feats).repeat_interleave(3, 0), atol=1e-12)
    model.float()
    x_hat = collect_samples(model, pair, images, samples_per_image=3, seed=2).double()
    neurons = torch.randint(6, (4, 3), generator=torch.Generator().manual_seed(2)).flatten()
    assert torch.allclose(y[torch.arange(12), neurons], x_hat.sum(1), atol=1e-5)


# --- the LASSO ---------------------------------------------------------------------------------------------

def _literal(z: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float, torch.Tensor, torch.Tensor]:
    zc, yc = z - z.mean(0), y - y.mean()
    m = z.shape[0]
    return (zc.T @ zc / m).numpy(), (zc.T @ yc / m).numpy(), float(yc @ yc / m), zc, yc


@pytest.mark.parametrize("m, c, kh, d", [(30, 4, 3, 5), (400, 3, 2, 50)])  # filter by filter; the covariance
def test_gram_form_is_the_stacked_contributions(m: int, c: int, kh: int, d: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(m, c, kh * kh, dtype=torch.float64, generator=gen) + 0.5
    w = torch.randn(d, c, kh, kh, dtype=torch.float64, generator=gen)
    gram, corr, yy = contribution_gram(x, w)
    z = torch.einsum("mct,dct->mdc", x, w.reshape(d, c, -1)).reshape(-1, c)  # rows (i, d), as the authors' Z
    g, b, y2, _, _ = _literal(z, z.sum(1))
    assert np.allclose(gram.numpy(), g) and np.allclose(corr.numpy(), b) and abs(yy - y2) < 1e-9 * y2


@pytest.mark.parametrize("fraction", [0.7, 0.2, 0.03])
def test_coordinate_descent_meets_the_kkt_conditions(fraction: float) -> None:
    gen = torch.Generator().manual_seed(4)
    base = torch.randn(400, 3, dtype=torch.float64, generator=gen)
    z = base @ torch.randn(3, 7, dtype=torch.float64, generator=gen) \
        + 0.3 * torch.randn(400, 7, dtype=torch.float64, generator=gen) + 2.0  # correlated, off-centre columns
    y = z @ torch.linspace(-1, 2, 7, dtype=torch.float64) + 0.5 * torch.randn(400, dtype=torch.float64, generator=gen)
    g, b, yy, zc, yc = _literal(z, y)
    lam_max = float(np.abs(b).max())
    lam = fraction * lam_max
    beta, info = lasso_cd(g, b, yy, lam, tol=1e-15, max_sweeps=20000)
    assert info["converged"]
    grad = (zc.T @ (yc - zc @ torch.from_numpy(beta)) / z.shape[0]).numpy()  # Z_jᵀr/M, literally
    zero, live = beta == 0, beta != 0
    assert zero.any() or fraction < 0.1
    assert np.all(np.abs(grad[zero]) <= lam + 1e-6 * lam_max)
    assert np.allclose(grad[live], lam * np.sign(beta[live]), atol=1e-6 * lam_max)
    # Above λ_max every coefficient is zero.
    assert not np.any(lasso_cd(g, b, yy, 1.001 * lam_max)[0])


def test_bisection_hits_n_keep_on_a_known_path() -> None:
    # Orthogonal channels: β_j = S(b_j, λ)/G_jj, so channel j is in exactly while λ < |b_j|.
    gram = np.diag([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    corr = np.array([0.5, -4.0, 1.5, 3.0, 0.2, -2.5])
    for n_keep, expected in [(1, [1]), (2, [1, 3]), (3, [1, 3, 5]), (4, [1, 2, 3, 5]), (5, [0, 1, 2, 3, 5])]:
        keep, info = lasso_select(gram, corr, 40.0, n_keep)
        assert info["hit"] and keep.tolist() == expected
        assert np.count_nonzero(info["beta"]) == n_keep


def test_path_that_skips_n_keep_takes_the_largest_at_the_nearest_lambda_above() -> None:
    # Channels 1 and 2 enter together at λ = 2: no λ gives two non-zero.
    gram, corr = np.eye(4), np.array([3.0, 2.0, -2.0, 1.0])
    keep, info = lasso_select(gram, corr, 20.0, 2)
    assert not info["hit"]
    assert 2.0 - 1e-8 < info["lam"] < 2.0  # the nearest λ below the tie, with 3 non-zero
    assert np.count_nonzero(info["beta"]) == 3
    assert keep.tolist() == [0, 1]  # |β| = 3−λ, then the tie 2−λ broken by the lower index
    # Fewer distinct channels than n_keep (zero energy): the non-zero ones, then by energy, then index.
    keep, info = lasso_select(np.diag([1.0, 1.0, 0.0, 2.0, 0.0]), np.array([2.0, 1.0, 0.0, 0.0, 0.0]), 5.0, 4)
    assert not info["hit"] and keep.tolist() == [0, 1, 2, 3]


def _dead_and_twin_model() -> nn.Module:
    """Producer channel 0 is always zero, channel 1 is not read by the consumer, channel 3 duplicates 2."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1)).eval()
    with torch.no_grad():
        producer, consumer = model[0], model[2]
        producer.weight[0], producer.bias[0] = 0.0, 0.0
        consumer.weight[:, 1] = 0.0
        producer.weight[3], producer.bias[3] = producer.weight[2], producer.bias[2]
        consumer.weight[:, 3] = consumer.weight[:, 2]
        producer.bias[4:] = 0.5  # channels 4 and 5 mostly alive
    return model


def test_zero_and_duplicated_contributions_give_the_known_support() -> None:
    model = _dead_and_twin_model()
    images = [_images(8, 3)]
    ctx = CriterionContext(model, LayerPair("0", "2"), images, keep_ratio=0.5, samples_per_image=10)
    sel = run_criterion("cp", ctx)
    # Three distinct live contributions (2 or its twin 3, 4, 5): the twin enters with the first at no λ.
    assert sel.keep.tolist() == [2, 4, 5]
    x, _ = collect_patches(model, LayerPair("0", "2"), images, samples_per_image=10)
    gram, corr, yy = contribution_gram(x, model[2].weight)
    assert float(gram[0].abs().max()) == 0.0 and float(gram[1].abs().max()) == 0.0
    # Four kept: no λ gives four non-zero, so the three live ones and the twin (energy before the dead).
    sel4 = run_criterion("cp", CriterionContext(model, LayerPair("0", "2"), images, keep_ratio=0.67,
                                                samples_per_image=10))
    assert sel4.keep.tolist() == [2, 3, 4, 5] and bool(torch.isfinite(sel4.consumer_weight).all())


# --- the refit ---------------------------------------------------------------------------------------------

def _prune_error(model: nn.Module, pair: LayerPair, images, sel, samples: int = 10) -> float:
    """‖pruned consumer output − original‖ at the sampled positions (all filters), bias included."""
    from thinet.surgery import prune_pair

    x, y = collect_patches(model, pair, images, samples_per_image=samples, seed=0)
    consumer = dict(model.named_modules())[pair.consumer]
    bias = consumer.bias.detach().double() if consumer.bias is not None else 0.0
    pruned = prune_pair(copy.deepcopy(model), pair, sel, example_inputs=images[0][:2])
    xp, yp = collect_patches(pruned, pair, images, samples_per_image=samples, seed=0)
    assert torch.allclose(xp, x[:, sel.keep])  # the same positions, the kept channels
    new = dict(pruned.named_modules())[pair.consumer]
    new_bias = new.bias.detach().double() if new.bias is not None else 0.0
    return float(((yp + new_bias) - (y + bias)).norm())


@pytest.mark.parametrize("bias", [True, False])
def test_refit_is_the_least_squares_of_the_whole_kept_weight(bias: bool) -> None:
    torch.manual_seed(5)
    model = _randomise_bn(nn.Sequential(nn.Conv2d(3, 10, 3, padding=1), nn.BatchNorm2d(10), nn.ReLU(),
                                        nn.Conv2d(10, 6, 3, padding=1, bias=bias))).eval()
    pair, images = LayerPair("0", "3"), [_images(12, 6)]
    sel = run_criterion("cp", CriterionContext(model, pair, images, keep_ratio=0.5, samples_per_image=10))
    assert sel.keep.numel() == 5 and torch.equal(sel.scale, torch.ones(5))
    x, y = collect_patches(model, pair, images, samples_per_image=10, seed=0)
    a = x[:, sel.keep].reshape(x.shape[0], -1)
    if bias:
        a = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], 1)
    solution = torch.linalg.lstsq(a, y).solution
    weight = solution[:45].T.reshape(6, 5, 3, 3)
    assert sel.consumer_weight.shape == (6, 5, 3, 3)
    assert torch.allclose(sel.consumer_weight.double(), weight, atol=1e-5, rtol=1e-4)
    if bias:
        assert torch.allclose(sel.consumer_bias.double(), model[3].bias.double() + solution[45], atol=1e-5)
    else:
        assert sel.consumer_bias is None
    # On the samples the whole-weight fit beats any per-channel scaling of the same kept channels:
    # the scaling fitted on all filters' contributions, and ThiNet's ŵ (Eq. 7 on its one-filter samples).
    from thinet.selection import least_squares_scale

    w = model[3].weight.detach().double().reshape(6, 10, 9)
    zk = torch.einsum("mct,dct->mdc", x, w)[:, :, sel.keep].reshape(-1, 5)
    scaled = float((y.reshape(-1) - zk @ torch.linalg.lstsq(zk, y.reshape(-1, 1)).solution[:, 0]).norm())
    x_hat = collect_samples(model, pair, images, samples_per_image=10, seed=0).double()
    w_hat = least_squares_scale(x_hat.T @ x_hat, sel.keep).double()
    thinet_like = float((y.reshape(-1) - zk @ w_hat).norm())
    got = _prune_error(model, pair, images, sel)
    assert got <= scaled * (1 + 1e-4) and scaled <= thinet_like * (1 + 1e-9)
    assert got < 0.999 * scaled  # and strictly better here


def test_an_underdetermined_refit_takes_the_minimum_norm_solution_as_the_authors_code() -> None:
    # 40 samples for 6 kept channels x 9 taps + 1 intercept: sklearn's LinearRegression (the authors' fc_kernel)
    # returns the minimum-norm least-squares solution, which fits the samples exactly.
    model, pair = tiny_vgg(), LayerPair("3", "7")
    images = [_images(8, 1)]
    sel = run_criterion("cp", CriterionContext(model, pair, images, keep_ratio=0.5, samples_per_image=5))
    patches, outputs = collect_patches(model, pair, images, samples_per_image=5, seed=0)
    a = patches[:, sel.keep].reshape(patches.shape[0], -1)
    a_mean, y_mean = a.mean(0), outputs.mean(0)
    want = torch.linalg.pinv(a - a_mean) @ (outputs - y_mean)
    assert torch.allclose(sel.consumer_weight.double().reshape(outputs.shape[1], -1), want.T, atol=1e-4)


def test_keeping_every_channel_leaves_the_layer_alone() -> None:
    sel = run_criterion("cp", CriterionContext(tiny_vgg(), LayerPair("3", "7"), [_images(2, 1)], keep_ratio=1.0))
    assert sel.keep.numel() == 12 and sel.consumer_weight is None and sel.consumer_bias is None


# --- the criterion in the engine -------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["conv_bn", "linear_head"])
def test_cp_conforms(case: str) -> None:
    if case == "conv_bn":
        model, pair, batches = tiny_vgg(), LayerPair("3", "7"), [(_images(4, s), torch.zeros(4)) for s in (1, 2)]
    else:
        model, pair, batches = flat_head(), LayerPair("0", "5"), [_images(12, s) for s in (1, 2)]
    check_criterion("cp", lambda r, seed: CriterionContext(model, pair, batches, keep_ratio=r, seed=seed,
                                                          samples_per_image=10), keep_ratios=(0.5, 0.3, 0.01))
    assert all(p.grad is None for p in model.parameters())


def test_prune_chain_with_cp_passes_cut_verification(tmp_path) -> None:
    from thinet.pipeline import prune_chain
    from thinet.runtime import derive_seed

    model, pair = tiny_vgg().eval(), LayerPair("3", "7")
    batches = [(_images(4, s), torch.zeros(4, dtype=torch.long)) for s in (1, 2)]
    expected = run_criterion("cp", CriterionContext(model, pair, batches, keep_ratio=0.5, samples_per_image=10,
                                                    seed=derive_seed(0, "select", 0)))  # the chain's step seed
    kept = model[3].weight.detach()[expected.keep].clone()
    pruned = prune_chain(copy.deepcopy(model), [PruneStep(pair, 0.5)], criterion="cp", selection_batches=batches,
                         finetune=None, train_loader=None, workdir=tmp_path, seed=0, device="cpu",
                         example_inputs=_images(2, 9), progress=False, samples_per_image=10)
    assert pruned[3].out_channels == num_kept(12, 0.5) == pruned[7].in_channels
    assert torch.equal(pruned[3].weight.detach(), kept)
    assert torch.allclose(pruned[7].weight.detach(), expected.consumer_weight)  # the refit, written in
    assert torch.allclose(pruned[7].bias.detach(), expected.consumer_bias)
