"""In-place initialization: ``out=`` on every registered scheme and ``fill_`` for arrays and torch
tensors. The in-place result must be BITWISE the returned-array result for the same seed, for
every dtype, thread count, layout and memory layout of ``out``; bad ``out`` arguments are
refused before anything is written."""

from __future__ import annotations

import numpy as np
import pytest

import initlab.init as ii
from initlab.init._sampling import BLOCK

torch = pytest.importorskip("torch")  # a test dependency (the fill_ tests); CI fails on any skip

# every registered scheme: its spec, a shape of several sampling blocks (> BLOCK elements) or a
# structured shape, and a convolution-kernel or other shape for the keras layout
CASES: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "zeros": ("zeros", (640, 480), (3, 3, 8, 16)),
    "ones": ("ones", (640, 480), (3, 3, 8, 16)),
    "constant": ("constant(value=-0.75)", (640, 480), (3, 3, 8, 16)),
    "normal": ("normal(mean=0.5, std=0.02)", (640, 480), (3, 3, 8, 16)),
    "uniform": ("uniform(a=-0.3, b=0.1)", (640, 480), (3, 3, 8, 16)),
    "trunc_normal": ("trunc_normal(std=1.0, a=-1.5, b=2.0)", (640, 480), (3, 3, 8, 16)),
    "variance_scaling": ("variance_scaling(scale=2.0, mode=fan_avg)", (640, 480), (3, 3, 8, 16)),
    "xavier_uniform": ("xavier_uniform(gain=1.5)", (640, 480), (3, 3, 8, 16)),
    "xavier_normal": ("xavier_normal", (640, 480), (3, 3, 8, 16)),
    "glorot_truncated_normal": ("glorot_truncated_normal", (640, 480), (3, 3, 8, 16)),
    "kaiming_uniform": ("kaiming_uniform(nonlinearity=relu)", (640, 480), (3, 3, 8, 16)),
    "kaiming_normal": ("kaiming_normal(mode=fan_out, a=0.2)", (640, 480), (3, 3, 8, 16)),
    "he_truncated_normal": ("he_truncated_normal", (640, 480), (3, 3, 8, 16)),
    "lecun_uniform": ("lecun_uniform", (640, 480), (3, 3, 8, 16)),
    "lecun_normal": ("lecun_normal", (640, 480), (3, 3, 8, 16)),
    "lecun_truncated_normal": ("lecun_truncated_normal", (640, 480), (3, 3, 8, 16)),
    "torch_default": ("torch_default", (640, 480), (3, 3, 8, 16)),
    "torch_default_bias": ("torch_default_bias(fan_in=7)", (160_000,), (9,)),
    "orthogonal": ("orthogonal(gain=2.0)", (96, 160), (3, 3, 4, 8)),
    "eye": ("eye(gain=3.0)", (640, 480), (7, 5)),
    "dirac": ("dirac(groups=2)", (16, 8, 3, 5), (3, 3, 8, 16)),
    "delta_orthogonal": ("delta_orthogonal(gain=1.5)", (16, 8, 3, 3), (3, 3, 8, 16)),
    "sparse": ("sparse(sparsity=0.3, std=0.5)", (640, 480), (40, 30)),
    "zero": ("zero", (40, 24, 3), (3, 3, 8, 20)),
}
DTYPES = [np.float16, np.float32, np.float64, np.complex64, np.complex128]


def test_every_registered_scheme_is_covered() -> None:
    assert sorted(CASES) == sorted(ii.schemes())
    assert max(np.prod(c[1]) for c in CASES.values()) > 2 * BLOCK  # several sampling blocks


def _dtypes(name: str) -> list[type]:
    return DTYPES if ii.lookup(name).complex_ok else DTYPES[:3]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _garbage(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    a = np.empty(shape, dtype)
    a.reshape(-1).view(np.uint8)[:] = 0xFF  # NaN everywhere: any element left unwritten shows
    return a


@pytest.mark.parametrize("name", sorted(CASES))
def test_out_is_bitwise_the_returned_array(name: str) -> None:
    spec, shape, _ = CASES[name]
    init = ii.get(spec)
    for dtype in _dtypes(name):
        ref = init(shape, rng=7, dtype=dtype, num_threads=1)
        for threads in (1, 2, 3):
            out = _garbage(shape, dtype)
            got = init(shape, rng=7, out=out, num_threads=threads)
            assert got is out
            assert _same_bits(out, ref), (name, dtype, threads)
        # the scheme function itself (not through an Initializer), dtype given and equal to out's
        out = _garbage(shape, dtype)
        fn = ii.lookup(name).fn
        assert fn(shape, rng=7, dtype=dtype, out=out, **init.spec.kwargs) is out and _same_bits(out, ref)


@pytest.mark.parametrize("name", sorted(CASES))
def test_out_keras_layout_and_generator_stream(name: str) -> None:
    spec, _, shape = CASES[name]
    init = ii.get(spec)
    ref = init(shape, rng=np.random.default_rng(3), layout="keras")
    out = _garbage(shape, np.float32)
    assert init(shape, rng=np.random.default_rng(3), layout="keras", out=out) is out and _same_bits(out, ref)
    # a Generator advances the same way in both paths: the next draws agree too
    g1, g2 = np.random.default_rng(11), np.random.default_rng(11)
    init(shape, rng=g1, layout="keras")
    init(shape, rng=g2, layout="keras", out=_garbage(shape, np.float32))
    assert g1.integers(0, 2**62) == g2.integers(0, 2**62)


@pytest.mark.parametrize("name", sorted(CASES))
def test_non_contiguous_out_is_filled_correctly(name: str) -> None:
    spec, shape, _ = CASES[name]
    init = ii.get(spec)
    ref = init(shape, rng=5, dtype=np.float64)
    # a Fortran-ordered view and a strided slice of a bigger array
    fortran = np.asfortranarray(_garbage(shape, np.float64))
    assert not fortran.flags.c_contiguous or len(shape) == 1
    assert init(shape, rng=5, out=fortran) is fortran and np.array_equal(fortran, ref)
    parent = np.full(shape[:-1] + (2 * shape[-1],), -123.0)
    view = parent[..., ::2]
    assert init(shape, rng=5, out=view) is view and np.array_equal(view, ref)
    assert (parent[..., 1::2] == -123.0).all()  # the rest of the parent untouched


@pytest.mark.parametrize("name", sorted(CASES))
def test_zero_size_out(name: str) -> None:
    spec, shape, _ = CASES[name]
    empty = tuple(0 if i == 0 else s for i, s in enumerate(shape))
    init = ii.get(spec)
    try:
        ref = init(empty, rng=0)
    except ValueError as e:  # a scheme that refuses this shape refuses it with out= too
        with pytest.raises(ValueError) as e2:
            init(empty, rng=0, out=np.empty(empty, np.float32))
        assert str(e2.value) == str(e)
        return
    out = np.empty(empty, np.float32)
    assert init(empty, rng=0, out=out) is out and out.shape == ref.shape == empty


def test_out_sets_the_default_dtype() -> None:
    w = np.empty((20, 30), np.float64)
    ii.normal((20, 30), rng=1, out=w)
    assert _same_bits(w, ii.normal((20, 30), rng=1, dtype=np.float64))
    assert ii.normal((2, 3), rng=1).dtype == np.float32  # without out: float32 as before


def test_fills_are_the_values_they_claim() -> None:
    w = np.empty((1100, 1000), np.float32)  # several fill blocks
    ii.constant(w.shape, value=0.25, out=w, num_threads=2)
    assert (w == np.float32(0.25)).all()
    ii.zeros(w.shape, out=w)
    assert (w == 0).all() and not np.signbit(w).any()
    ii.eye(w.shape, gain=2.0, out=w, num_threads=2)
    assert np.array_equal(w, 2.0 * np.eye(1100, 1000, dtype=np.float32))
    c = np.empty((3, 4), np.complex64)
    ii.ones(c.shape, out=c)
    assert (c == 1 + 0j).all()


# ------------------------------------------------------------------------------------ errors
def test_bad_out_arguments() -> None:
    w = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"'out'.*shape \(3, 4\).*got an array of shape \(4, 3\)"):
        ii.normal((3, 4), out=np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match=r"'out'.*float16, float32, float64, complex64, complex128.*got int32"):
        ii.normal((3, 4), out=np.zeros((3, 4), np.int32))
    with pytest.raises(TypeError, match=r"'out' argument of 'uniform'.*float16, float32, float64 .*got complex64"):
        ii.uniform((3, 4), out=np.zeros((3, 4), np.complex64))
    with pytest.raises(TypeError, match=r"'out'.*non-native byte order"):
        ii.normal((3, 4), out=np.zeros((3, 4), ">f4"))
    with pytest.raises(TypeError, match=r"'dtype'.*None or the dtype of 'out' \(float32\).*got float64"):
        ii.normal((3, 4), dtype=np.float64, out=w)
    ro = np.zeros((3, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"'out'.*writeable.*read-only"):
        ii.normal((3, 4), out=ro)
    with pytest.raises(TypeError, match=r"'out'.*numpy.ndarray.*got list"):
        ii.normal((1, 2), out=[[0.0, 0.0]])
    with pytest.raises(TypeError, match=r"'out'.*got int32"):
        ii.get("orthogonal")((3, 4), out=np.zeros((3, 4), np.int32))


@pytest.mark.parametrize("call", [
    lambda w: ii.normal(w.shape, std=1e5, out=w),  # beyond float16's range
    lambda w: ii.dirac(w.shape, groups=3, out=w),  # groups must divide the out channels
    lambda w: ii.sparse(w.shape, sparsity=0.5, out=w),  # 2-D only
    lambda w: ii.delta_orthogonal(w.shape, out=w),  # out channels (4) < in channels (8)
    lambda w: ii.get("trunc_normal")(w.shape, a=1.0, b=0.0, out=w),  # a > b
])
def test_a_refused_call_leaves_out_untouched(call) -> None:
    w = np.full((4, 8, 3), 7.0, np.float16)
    with pytest.raises(ValueError):
        call(w)
    assert (w == 7.0).all()


# ------------------------------------------------------------------------------------ fill_
def test_fill_numpy_array_and_spec_forms() -> None:
    ref = ii.kaiming_normal((30, 40), mode="fan_out", rng=2)
    for spec in ("kaiming_normal(mode=fan_out)", {"name": "kaiming_normal", "params": {"mode": "fan_out"}},
                 ii.get("kaiming_normal(mode=fan_out)")):
        w = _garbage((30, 40), np.float32)
        assert ii.fill_(w, spec, rng=2) is w and _same_bits(w, ref)
    w = _garbage((30, 40), np.float32)
    assert ii.fill_(w, ii.he_normal, rng=2, mode="fan_out") is w and _same_bits(w, ref)  # function + override
    with pytest.raises(TypeError, match="'spec'"):
        ii.fill_(w, print)
    with pytest.raises(TypeError, match="'spec'"):
        ii.fill_(w, 3)
    with pytest.raises(TypeError, match=r"'tensor'.*torch.Tensor or a numpy.ndarray.*got list"):
        ii.fill_([1.0], "normal")




@pytest.mark.parametrize("name", sorted(CASES))
def test_fill_torch_tensor_shares_memory_and_matches(name: str) -> None:
    spec, shape, _ = CASES[name]
    t = torch.full(shape, float("nan"))
    ptr = t.data_ptr()
    state = torch.get_rng_state()
    assert ii.fill_(t, spec, rng=9) is t
    assert t.data_ptr() == ptr
    assert _same_bits(t.numpy(), ii.get(spec)(shape, rng=9))
    assert torch.equal(torch.get_rng_state(), state)  # torch's RNG never used


@pytest.mark.parametrize("tdtype, ndtype", [(torch.float16, np.float16), (torch.float64, np.float64),
                                            (torch.complex64, np.complex64), (torch.complex128, np.complex128)])
def test_fill_torch_dtypes(tdtype, ndtype) -> None:
    t = torch.empty(50, 60, dtype=tdtype)
    ptr = t.data_ptr()
    ii.fill_(t, "xavier_normal", rng=4)
    assert t.data_ptr() == ptr and _same_bits(t.numpy(), ii.xavier_normal((50, 60), rng=4, dtype=ndtype))


def test_fill_parameter_with_requires_grad() -> None:
    p = torch.nn.Parameter(torch.zeros(20, 30))
    ptr, version = p.data_ptr(), p._version
    assert ii.fill_(p, "orthogonal", rng=1) is p
    assert p.requires_grad and p.grad_fn is None and p.is_leaf and p.data_ptr() == ptr
    assert p._version > version  # the write is visible to autograd's in-place checks
    assert _same_bits(p.detach().numpy(), ii.orthogonal((20, 30), rng=1))
    (p.sum() * 2).backward()  # still an ordinary leaf parameter
    assert torch.equal(p.grad, torch.full((20, 30), 2.0))


def test_fill_non_contiguous_tensor_views() -> None:
    base = torch.full((40, 60), -5.0)
    ptr = base.data_ptr()
    view = base[:, ::2]  # strided, 40x30
    ii.fill_(view, "normal(std=0.3)", rng=8)
    assert base.data_ptr() == ptr
    assert _same_bits(np.ascontiguousarray(view.numpy()), ii.normal((40, 30), std=0.3, rng=8))
    assert (base[:, 1::2] == -5.0).all()
    tt = torch.empty(30, 20).t()  # transposed: shape (20, 30), Fortran-ordered memory
    ii.fill_(tt, "kaiming_uniform", rng=8)
    assert np.array_equal(tt.numpy(), ii.kaiming_uniform((20, 30), rng=8))


def test_fill_bfloat16() -> None:
    t = torch.empty(300, 500, dtype=torch.bfloat16)
    ptr = t.data_ptr()
    ii.fill_(t, "normal(std=0.02)", rng=3)
    assert t.data_ptr() == ptr
    ref = torch.from_numpy(ii.normal((300, 500), std=0.02, rng=3)).to(torch.bfloat16)  # torch's rounding
    assert torch.equal(t.view(torch.int16), ref.view(torch.int16))
    # bounded schemes: rounding to bfloat16 never steps outside the bounds
    b = 1 / 3
    u = torch.empty(400, 500, dtype=torch.bfloat16)
    ii.fill_(u, "uniform", rng=0, a=-b, b=b)
    assert float(u.float().max()) <= b and float(u.float().min()) >= -b
    assert float(u.float().max()) > 0.32  # the range is really used
    # a constant that bfloat16 cannot hold rounds to nearest, as torch rounds it
    k = torch.empty(3, 4, dtype=torch.bfloat16)
    ii.fill_(k, "constant(value=0.1)")
    assert torch.equal(k, torch.full((3, 4), 0.1, dtype=torch.float32).to(torch.bfloat16))
    # a strided bfloat16 view
    base = torch.zeros(10, 20, dtype=torch.bfloat16)
    ii.fill_(base[:, 1::2], "ones")
    assert (base[:, 1::2] == 1).all() and (base[:, 0::2] == 0).all()


def test_fill_copy_path_for_tensors_numpy_cannot_view() -> None:
    # a conjugate view cannot be seen through .numpy(): drawn on the host and copied with copy_,
    # the path CUDA tensors take
    t = torch.zeros(6, 7, dtype=torch.complex64).conj()
    ii.fill_(t, "normal", rng=2)
    assert np.array_equal(t.resolve_conj().numpy(), ii.normal((6, 7), rng=2, dtype=np.complex64))
    b = torch.zeros(6, 7, dtype=torch.complex64).conj()
    ii.fill_(b, "orthogonal", rng=2)
    assert np.array_equal(b.resolve_conj().numpy(), ii.orthogonal((6, 7), rng=2, dtype=np.complex64))


def test_fill_torch_errors() -> None:
    with pytest.raises(TypeError, match=r"'tensor'.*float16, bfloat16, float32.*got torch.int64"):
        ii.fill_(torch.zeros(3, 3, dtype=torch.int64), "normal")
    with pytest.raises(ValueError, match=r"'tensor'.*meta"):
        ii.fill_(torch.empty(3, 3, device="meta"), "normal")
    t = torch.full((3, 4), 2.0)
    with pytest.raises(ValueError, match="'groups'"):
        ii.fill_(t, "eye", groups=2)  # eye takes no groups
    with pytest.raises(ValueError, match="'shape'"):
        ii.fill_(t, "dirac")  # 2-D
    assert (t == 2.0).all()
    with pytest.raises(TypeError, match=r"'out'.*initlab.init.fill_"):
        ii.normal((3, 4), out=t)  # a tensor passed as out: the message points to fill_


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_orthogonal_blocked_path_is_thread_independent(dtype) -> None:
    # more than _Q_BLOCK columns: the blocked (complex) or GEMM (real) formation of Q, whose
    # LAPACK/BLAS calls run single-threaded so that the bits never depend on num_threads
    ref = ii.orthogonal((300, 600), rng=7, dtype=dtype, num_threads=1)
    for threads in (2, 4):
        out = _garbage((300, 600), dtype)
        assert _same_bits(ii.orthogonal((300, 600), rng=7, dtype=dtype, num_threads=threads, out=out), ref)


def test_bfloat16_inner_bounds() -> None:
    from initlab.init._fill import _bf16_inner

    def bits(x: float) -> int:
        return int(np.array([x], np.float32).view(np.uint32)[0])

    rng = np.random.default_rng(0)
    xs = list(rng.normal(size=200) * 10.0 ** rng.integers(-30, 30, size=200)) + [0.5, -0.5, 1 / 3, -1 / 3]
    for x in xs:
        x = float(x)
        hi, lo = _bf16_inner(x, upper=True), _bf16_inner(x, upper=False)
        assert bits(hi) & 0xFFFF == 0 and bits(lo) & 0xFFFF == 0  # bfloat16 values
        assert lo >= x >= hi
        # and the nearest such: one bfloat16 step beyond is on the other side of x
        up = np.array([bits(hi) + (0x10000 if hi >= 0 else -0x10000)], np.uint32).view(np.float32)[0]
        assert float(up) > x or hi == x
