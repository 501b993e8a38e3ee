"""The probe's guess of the init in place: exact structures recognised exactly, random inits named
only when their std matches a scheme for the layer's fans (tolerance from the number of weights)
and their kurtosis the scheme's distribution; anything else described by its measured std."""

from __future__ import annotations

import math

import numpy as np
import pytest

import initlab
from initlab import init as ii
from initlab.diagnostics._verdicts import _describe, _in_place
from initlab.diagnostics._weight_init import FAMILIES, excess_kurtosis, families, structure
from initlab.nn import Conv1d, Conv2d, Dense, Flatten, Network

torch = pytest.importorskip("torch")
nn = torch.nn

R2 = math.sqrt(2.0)


def _initlab_net(conv: str, dense: str, dims: int, c: int = 32) -> Network:
    """conv(1→c) relu, conv(c→2c) relu, flatten, dense(→c) relu, dense(→10): every weight layer
    of the kinds named in the probe (conv1d / conv2d / dense)."""
    Conv = Conv1d if dims == 1 else Conv2d
    shape = (1, 12) if dims == 1 else (1, 6, 6)
    pos = 12 if dims == 1 else 36
    return Network([Conv(1, c, 3, padding=1, activation="relu", init=conv),
                    Conv(c, 2 * c, 3, padding=1, activation="relu", init=conv), Flatten(),
                    Dense(2 * c * pos, c, activation="relu", init=dense), Dense(c, 10, init=dense)],
                   input_shape=shape, rng=0)


def _torch_net(dims: int, c: int = 32) -> "torch.nn.Module":
    Conv = nn.Conv1d if dims == 1 else nn.Conv2d
    pos = 12 if dims == 1 else 36
    return nn.Sequential(Conv(1, c, 3, padding=1), nn.ReLU(), Conv(c, 2 * c, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * c * pos, c), nn.ReLU(), nn.Linear(c, 10))


def _x(dims: int, n: int = 64) -> np.ndarray:
    shape = (n, 1, 12) if dims == 1 else (n, 1, 6, 6)
    return np.random.default_rng(5).standard_normal(shape).astype(np.float32)


def _weight_rows(res: initlab.diagnostics.ProbeResult) -> list[initlab.diagnostics.LayerStats]:
    return [st for st in res.layers if st.weight_std is not None and st.fan_in]


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("conv, dense, want_conv, want_dense", [
    (f"delta_orthogonal(gain={R2!r})", f"orthogonal(gain={R2!r})", "delta_orthogonal(gain=1.41)", "orthogonal(gain=1.41)"),
    ("delta_orthogonal", "orthogonal(gain=0.5)", "delta_orthogonal(gain=1)", "orthogonal(gain=0.5)"),
    ("orthogonal(gain=3.0)", "eye(gain=2.0)", "orthogonal(gain=3)", "eye(gain=2)"),
    ("zeros", "constant(value=0.25)", "zeros", "constant(value=0.25)"),
])
def test_exact_structures_are_named_on_initlab_layers(dims: int, conv: str, dense: str, want_conv: str,
                                                      want_dense: str) -> None:
    res = initlab.probe(_initlab_net(conv, dense, dims), _x(dims), rng=0)
    rows = _weight_rows(res)
    assert [st.kind for st in rows] == [f"conv{dims}d"] * 2 + ["dense"] * 2
    names = [_in_place(st)[1] for st in rows]
    # the first conv (1 → 32) flattens to 32 × 3 (conv1d) or 32 × 9 (conv2d): more rows than
    # columns, so it is WᵀW = g²·I that is checked; its delta-orthogonal centre is a 32 × 1 column
    assert names == [want_conv, want_conv, want_dense, want_dense], names
    assert all(want_conv.split("(")[0] in _describe(st) for st in rows[:2])


@pytest.mark.parametrize("dims", [1, 2])
def test_exact_structures_are_named_on_torch_layers(dims: int) -> None:
    for how, want_conv, want_dense in [
        ({f"Conv{dims}d": {"weight": f"delta_orthogonal(gain={R2!r})"}, "Linear": {"weight": "orthogonal(gain=0.7)"}},
         "delta_orthogonal(gain=1.41)", "orthogonal(gain=0.7)"),
        ("torch", "orthogonal(gain=2)", "orthogonal(gain=2)"),  # torch.nn.init.orthogonal_
        ("dirac", "dirac", "zeros"),  # torch.nn.init.dirac_ / zeros_
    ]:
        m = _torch_net(dims)
        if how == "torch":
            for mod in m.modules():
                if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                    nn.init.orthogonal_(mod.weight, gain=2.0)
        elif how == "dirac":
            for mod in m.modules():
                if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
                    nn.init.dirac_(mod.weight)
                elif isinstance(mod, nn.Linear):
                    nn.init.zeros_(mod.weight)
        else:
            initlab.apply(m, how, rng=0)
        res = initlab.probe(m, torch.from_numpy(_x(dims)), rng=0)
        rows = _weight_rows(res)
        assert [st.kind for st in rows] == ["conv", "conv", "linear", "linear"]
        assert [_in_place(st)[1] for st in rows] == [want_conv, want_conv, want_dense, want_dense], how


def test_structure_tests_the_whole_structure() -> None:
    rng = np.random.default_rng(0)
    d = ii.delta_orthogonal((16, 8, 3, 3), gain=2.0, rng=0)
    assert structure(d) == "delta_orthogonal(gain=2)" and structure(d.astype(np.float64)) == "delta_orthogonal(gain=2)"
    off = d.copy()
    off[3, 2, 0, 0] = 1e-3  # one off-centre tap
    assert structure(off) is None
    bent = d.copy()
    bent[:, :, 1, 1][5, 4] += 1e-2  # the centre no longer orthogonal
    assert structure(bent) is None
    cen = np.zeros((16, 8, 3, 3), np.float32)
    cen[:, :, 1, 1] = rng.standard_normal((16, 8))  # a delta kernel with a Gaussian centre
    assert structure(cen) is None
    corner = np.zeros((16, 8, 3, 3), np.float32)
    corner[:, :, 0, 0] = ii.orthogonal((16, 8), rng=0)  # one tap, not the centre
    assert structure(corner) is None
    # even kernels: the centre is (k−1)//2 (JAX, initlab) or k//2 (torch dirac_)
    assert structure(ii.delta_orthogonal((8, 8, 4), rng=0)) == "delta_orthogonal(gain=1)"
    t = torch.empty(8, 8, 4)
    torch.nn.init.dirac_(t)
    assert structure(t.numpy()) == "dirac"
    # a row or column vector is orthogonal up to scale whatever its entries: never named so
    assert structure(rng.standard_normal((1, 50))) is None and structure(rng.standard_normal((50, 1))) is None
    # a 1×1 convolution is a matrix: orthogonal, not delta-orthogonal
    assert structure(ii.orthogonal((16, 8, 1, 1), rng=0)) == "orthogonal(gain=1)"
    # a permutation is orthogonal; a scaled identity is eye; -1 constants are constants
    assert structure(np.eye(6)[rng.permutation(6)]) == "orthogonal(gain=1)"
    assert structure(np.full((3, 3, 3), -1.0)) == "constant(value=-1)"


def test_a_wide_half_precision_gaussian_is_not_orthogonal() -> None:
    """16 × 100 000 Gaussian rows are orthogonal to ~1/√c = 0.003, below float16's 8·eps = 0.008:
    the tolerance is capped at 0.25/√c; the same matrix made orthogonal is still recognised."""
    w = ii.kaiming_normal((16, 100_000), rng=0)
    assert structure(w.astype(np.float16)) is None
    q = ii.orthogonal((16, 100_000), rng=0)
    assert structure(q) == "orthogonal(gain=1)"


@pytest.mark.parametrize("shape", [(64, 64), (256, 512), (32, 16, 3), (64, 32, 3, 3), (10, 1000)])
def test_random_inits_are_never_taken_for_a_structure(shape: tuple[int, ...]) -> None:
    for seed in range(10):
        for spec in ("kaiming_normal", "xavier_uniform", "torch_default", "lecun_truncated_normal"):
            assert structure(ii.get(spec)(shape, rng=seed)) is None, (spec, shape, seed)


def _row(spec: str, shape: tuple[int, ...], activation: str | None = "relu", seed: int = 0,
         kind: str | None = None) -> initlab.diagnostics.LayerStats:
    """A probe row of a weight of ``shape`` (torch layout) made by ``spec``."""
    from initlab.diagnostics._measure import new_layer, weight_stats
    from initlab.activations import get

    st = new_layer(1, "l", kind or ("conv" if len(shape) > 2 else "dense"), None if activation is None else get(activation))
    st.width = shape[0]
    weight_stats(st, ii.get(spec)(shape, rng=seed))
    return st


@pytest.mark.parametrize("shape", [(128, 256), (48, 32, 5), (48, 32, 3, 3)])
def test_variance_schemes_are_named_with_their_distribution(shape: tuple[int, ...]) -> None:
    """n ≥ 8192 weights: the std within 4·√(2/n) ≤ 6% of the scheme's and the kurtosis told apart
    (4 standard errors: normal ±0.22, uniform ±0.05 at n = 8192; γ = 0, −1.2, −0.63)."""
    n = math.prod(shape)
    assert 4 * math.sqrt(FAMILIES["normal"][1] / n) < 0.3  # the premise: the families are told apart
    cases = {"kaiming_normal": "kaiming_normal", "kaiming_uniform": "kaiming_uniform",
             "he_truncated_normal": "he_truncated_normal", "lecun_normal": "lecun_normal",
             "lecun_uniform": "lecun_uniform", "xavier_normal": "xavier_normal", "xavier_uniform": "xavier_uniform",
             "kaiming_normal(mode=fan_out)": "kaiming_normal(mode=fan_out)",
             "torch_default": "torch's default kaiming_uniform(a=√5)"}
    for seed in range(5):
        for spec, want in cases.items():
            st = _row(spec, shape, seed=seed)
            s2, name = _in_place(st)
            assert name == want, (spec, shape, seed, name, st.weight_kurtosis)
            fan_in, fan_out = ii.compute_fans(shape)
            assert st.fan_out == fan_out
    # fan_out = 2·fan_in: kaiming_normal(mode=fan_out) has lecun's variance; both are named
    assert _in_place(_row("kaiming_normal(mode=fan_out)", (64, 32, 3, 3)))[1] == "lecun_normal/kaiming_normal(mode=fan_out)"
    # leaky slope: named with it
    assert _in_place(_row("kaiming_normal(a=0.2, nonlinearity=leaky_relu)", (128, 256), "leaky_relu(0.2)"))[1] == \
        "kaiming_normal(a=0.2, nonlinearity=leaky_relu)"


def test_an_init_matching_no_scheme_gets_no_scheme_name() -> None:
    n = 128 * 256
    tol = 4 * math.sqrt(2 / n)
    # 1.5× He's variance, a plain normal(std=0.1), a uniform at 0.7× lecun: none is a scheme here
    for spec, like in (("variance_scaling(scale=3.0, mode=fan_in, distribution=normal)", "normal-like"),
                       ("normal(std=0.1)", "normal-like"),
                       ("variance_scaling(scale=0.7, mode=fan_in, distribution=uniform)", "uniform-like")):
        st = _row(spec, (128, 256))
        s2, name = _in_place(st)
        assert name == f"std {float(f'{st.weight_std:.2g}'):g} ({like})", (spec, name)
        assert s2 == pytest.approx(256 * st.weight_std ** 2, rel=1e-12)  # the measured σ_w²
        assert "normal(" not in _describe(st) and "kaiming" not in _describe(st) and like in _describe(st)
        assert abs(s2 / 2.0 - 1) > tol and abs(s2 - 1) > tol  # the premise: far from every scheme
    # a uniform with He's variance is kaiming_uniform, never kaiming_normal
    assert _in_place(_row("variance_scaling(scale=2.0, mode=fan_in, distribution=uniform)", (128, 256)))[1] == "kaiming_uniform"


def test_few_weights_or_no_kurtosis_leave_the_distribution_open() -> None:
    """4·3 weights: the kurtosis cannot tell normal from uniform: the name gives the scale alone;
    the tolerance on the std is wide (4·√(2/12) ≈ 1.6). The same without a measured kurtosis
    (a watch's rows)."""
    st = _row("kaiming_normal", (4, 3), seed=1)
    assert families(st.weight_kurtosis, 12) == tuple(FAMILIES)
    assert _in_place(st)[1] == "kaiming scale"
    assert _describe(st) == "relu with weights at kaiming scale (σ_w² = 2)"
    st = _row("torch_default", (128, 256))
    st.weight_kurtosis = None
    assert _in_place(st)[1] == "torch's default scale"
    st = _row("kaiming_normal(mode=fan_out)", (64, 32, 3, 3))
    st.weight_kurtosis = None
    assert _in_place(st)[1] == "lecun/kaiming (fan_out) scale"


def test_kurtosis_tolerance_holds_for_each_family() -> None:
    """Each family's own samples fit it at 4 standard errors (n = 200 and 5000, 200 samples each:
    the asymptotic false-rejection rate is 6e-5; a few at small n from the kurtosis's skew)."""
    rng = np.random.default_rng(0)
    draw = {"normal": lambda s: rng.standard_normal(s),
            "uniform": lambda s: rng.uniform(-1, 1, s),
            "truncated_normal": lambda s: ii.trunc_normal(s, a=-2.0, b=2.0, rng=rng)}
    for n in (200, 5000):
        for fam, f in draw.items():
            hits = sum(fam in families(excess_kurtosis(f((n,))), n) for _ in range(200))
            assert hits >= 196, (fam, n, hits)
    assert families(excess_kurtosis(rng.standard_normal(5000)), 5000) == ("normal",)


def test_cnn_study_probe_names_delta_orthogonal() -> None:
    """The defect: the digits CNN's delta-orthogonal layers were called normal(std=0.1)."""
    from initlab._rng import as_generator
    from initlab.studies.cnn import INITS, _digits_net

    conv, dense = next((c, d) for k, _, c, d in INITS if k == "delta_orth")
    net = _digits_net(conv, dense, as_generator(3))
    res = initlab.probe(net, np.random.default_rng(1).standard_normal((64, 1, 8, 8)).astype(np.float32), rng=4)
    rows = _weight_rows(res)
    assert [_in_place(st)[1] for st in rows] == ["delta_orthogonal(gain=1.41)"] * 2 + ["orthogonal(gain=1.41)"]
    assert all("normal(std" not in v.message for v in res.verdicts)


def test_an_orthogonal_init_at_the_recommended_scale_is_kept_and_named() -> None:
    """orthogonal(gain=√2) on square relu layers has σ_w² = 2, kaiming_normal's: the dead-unit
    verdict keeps the weights, and says which init they have."""
    net = Network([100, 200, 200, 200, 10], "relu", init=f"orthogonal(gain={R2!r})", rng=0)
    net.layers[1].bias = np.where(np.arange(200) < 80, -50.0, 0.0).astype(np.float32)
    res = initlab.probe(net, np.random.default_rng(0).standard_normal((500, 100)).astype(np.float32), rng=0)
    v = next(v for v in res.verdicts if v.kind == "dead")
    assert "the weights (orthogonal(gain=1.41)) already have σ_w² = 2, as kaiming_normal" in v.recommendation, \
        v.recommendation
    assert v.fix["layers.1"] == {"*bias*": "zeros"}
