"""Network construction, the capture contract, weights access, save/load, to_torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from initlab.nn import LayerTrace, Network


def test_construction_layout_and_specs():
    net = Network([2, 12, 6, 1], ["relu", "tanh"], "sigmoid", init=["he_normal", "xavier_normal", "zeros"], rng=0)
    assert [l.weight.shape for l in net.layers] == [(12, 2), (6, 12), (1, 6)]
    assert [l.bias.shape for l in net.layers] == [(12,), (6,), (1,)]
    assert [l.activation.name for l in net.layers] == ["relu", "tanh", "sigmoid"]
    assert [str(l.init_spec) for l in net.layers] == ["he_normal", "xavier_normal", "zeros"]
    assert net.n_params == 2 * 12 + 12 + 12 * 6 + 6 + 6 + 1
    assert net.params.dtype == np.float32 and not np.any(net.layers[2].weight)
    assert Network([2, 3], rng=0).layers[0].activation.name == "linear"


def test_he_normal_weights_have_the_he_variance():
    # Var = 2 / fan_in with fan_in = 400 (torch layout [out, in]); 4e5 draws: std error of the
    # sample variance is var * sqrt(2 / n) ~ 0.22% -> 5 standard errors
    net = Network([400, 1000, 1], rng=1)
    w = net.layers[0].weight.astype(np.float64)
    assert w.var() == pytest.approx(2 / 400, rel=5 * np.sqrt(2 / w.size))


def test_same_seed_same_weights_and_no_global_state(global_rng_untouched):
    with global_rng_untouched():
        a, b = Network([3, 5, 2], rng=7), Network([3, 5, 2], rng=7)
        np.testing.assert_array_equal(a.params, b.params)
        assert not np.array_equal(a.params, Network([3, 5, 2], rng=8).params)
        a.fit(np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=2, batch_size=2)


def test_torch_default_init_and_bias_reproduce_nn_linear_bounds():
    # torch.nn.Linear: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); layer 1 has fan_in 3
    net = Network([3, 4, 2], init="torch_default", bias_init="torch_default_bias", rng=0)
    bound1, bound2 = 1 / np.sqrt(3), 1 / np.sqrt(4)
    w1, b1 = net.layers[0].weight, net.layers[0].bias
    assert np.all(np.abs(w1) <= bound1) and np.all(np.abs(b1) <= bound1)
    assert np.all(np.abs(net.layers[1].bias) <= bound2) and np.any(b1 != 0)
    assert str(net.layers[0].bias_init_spec) == "torch_default_bias"
    # the bias uses each layer's own fan in: a wide layer's bias stays inside its smaller bound
    wide = Network([400, 50, 1], init="torch_default", bias_init="torch_default_bias", rng=0)
    b = wide.layers[0].bias
    assert np.all(np.abs(b) <= 1 / np.sqrt(400)) and np.abs(b).max() > 0.5 / np.sqrt(400)
    # an explicit fan_in in the spec is respected
    fixed = Network([400, 50, 1], bias_init="torch_default_bias(fan_in=1)", rng=0)
    assert np.abs(fixed.layers[0].bias).max() > 1 / np.sqrt(400)


def test_torch_default_bias_has_the_uniform_moments():
    # U(-b, b) with b = 1/sqrt(fan_in): mean 0, variance b^2/3; 1000 biases, 5 standard errors
    net = Network([16, 1000, 1], init="torch_default", bias_init="torch_default_bias", rng=1, dtype=np.float64)
    b = net.layers[0].bias
    var = 1 / 16 / 3
    assert abs(b.mean()) < 5 * np.sqrt(var / b.size)
    # Var of the sample variance of a uniform: (E x^4 - var^2)/n with E x^4 = b^4/5
    se_var = np.sqrt((1 / 16**2 / 5 - var**2) / b.size)
    assert abs(b.var() - var) < 5 * se_var


def test_capture_and_backward_fill_every_field():
    net = Network([3, 4, 2], "tanh", rng=0)
    x = np.ones((5, 3), dtype=np.float32)
    out, trace = net.forward(x, capture=True)
    assert all(isinstance(t, LayerTrace) for t in trace) and len(trace) == 2
    assert trace[0].inputs.shape == (5, 3) and trace[0].preact.shape == (5, 4) and trace[1].act.shape == (5, 2)
    np.testing.assert_array_equal(out, trace[1].act)
    np.testing.assert_allclose(trace[0].act, np.tanh(trace[0].preact))
    net.backward(np.ones_like(out), trace)
    for layer, t in zip(net.layers, trace):
        assert t.grad_act.shape == t.act.shape and t.grad_preact.shape == t.preact.shape
        assert t.grad_weight.shape == layer.weight.shape and t.grad_bias.shape == layer.bias.shape
    # the first layer's grad_act is the second layer's input gradient g W2
    np.testing.assert_allclose(trace[0].grad_act, np.ones((5, 2)) @ net.layers[1].weight, rtol=1e-6)


def test_weights_are_writable_and_checked():
    net = Network([2, 3, 1], rng=0)
    net.layers[0].weight = np.full((3, 2), 0.5)
    assert net.params[0] == np.float32(0.5)  # the fused vector sees the change
    with pytest.raises(ValueError, match="'weight'.*\\(3, 2\\)"):
        net.layers[0].weight = np.zeros((2, 3))


@pytest.mark.parametrize(
    "kwargs,match",
    [({"sizes": [2]}, "'sizes'"), ({"sizes": [2, 0, 1]}, "'sizes'"), ({"sizes": [2, 3, 1], "activation": "relux"}, "relu"),
     ({"sizes": [2, 3, 1], "activation": ["relu", "tanh"]}, "'activation'"), ({"sizes": [2, 3, 1], "dtype": "float16"}, "'dtype'"),
     ({"sizes": [2, 3, 1], "init": ["zeros"]}, "'init'")],
)
def test_bad_construction_is_a_clear_error(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Network(**kwargs)


def test_save_load_round_trip(tmp_path):
    net = Network([3, 5, 2], "leaky_relu(0.2)", init="kaiming_uniform(a=0.2)", rng=3, dtype=np.float64)
    jpath, npath = net.save(tmp_path / "model")
    assert jpath.name == "model.json" and npath.name == "model.npz"
    cfg = json.loads(jpath.read_text())
    assert cfg["activation"] == ["leaky_relu(0.2)"] and cfg["init"][0] == "kaiming_uniform(a=0.2)"
    back = Network.load(tmp_path / "model.json")
    assert back.dtype == np.float64 and str(back.layers[0].init_spec) == "kaiming_uniform(a=0.2)"
    np.testing.assert_array_equal(back.params, net.params)
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(back.predict(x), net.predict(x))


def test_load_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Network.load(tmp_path / "missing")
    Network([2, 2], rng=0).save(tmp_path / "m")
    (tmp_path / "m.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="m.npz"):
        Network.load(tmp_path / "m")


def test_load_with_a_missing_key_names_the_file_and_key(tmp_path):
    Network([3, 4, 2], rng=0).save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m.json").read_text())
    for key in ("sizes", "dtype", "bias_init"):
        broken = {k: v for k, v in cfg.items() if k != key}
        (tmp_path / "m.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=f"m.json.*missing key.*'{key}'"):
            Network.load(tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps({**cfg, "init": ["zeros"]}))
    with pytest.raises(ValueError, match="m.json.*'init'"):
        Network.load(tmp_path / "m")


def test_to_torch_without_a_torch_module_is_a_clear_error():
    pytest.importorskip("torch")
    net = Network([2, 3, 1], "erf", rng=0)
    with pytest.raises(ValueError, match="'erf'.*Supported activations: linear, sigmoid, tanh, relu"):
        net.to_torch()


def test_to_torch_is_a_plain_copy():
    torch = pytest.importorskip("torch")
    net = Network([4, 6, 3], "elu(0.5)", "sigmoid", rng=0)
    model = net.to_torch()
    assert [type(m).__name__ for m in model] == ["Linear", "ELU", "Linear", "Sigmoid"]
    assert model[1].alpha == 0.5 and model[0].weight.dtype == torch.float32
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), net.layers[0].weight)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), net.predict(x), rtol=1e-5, atol=1e-6)
