"""initlab.data._sklearn_fast: two moons and digits without importing scikit-learn are scikit-learn's arrays, bit for bit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from initlab.data import _sklearn_fast
from initlab.data.offline import digits
from initlab.data.synthetic import moons


def test_the_verified_scikit_learn_is_recognised():
    """The replicas are used exactly for the scikit-learn source they copy: the version they were
    checked against is recognised; any other installed version runs scikit-learn itself (the
    fallback test below). To use them with a new release, check them against its source and add
    its fingerprint."""
    from importlib.metadata import version

    if version("scikit-learn") == "1.9.1":
        assert _sklearn_fast.usable(), _sklearn_fast._fingerprint()
    else:  # a release whose sources of these functions are unchanged is recognised too; any other is not
        try:
            same = _sklearn_fast._fingerprint() in _sklearn_fast._VERIFIED
        except (KeyError, OSError):
            same = False
        assert _sklearn_fast.usable() is same


def test_a_changed_function_is_not_recognised(monkeypatch):
    """The fingerprint covers every function the replicas copy: a change in any of them (here:
    one character of ``shuffle``'s source) gives another fingerprint."""
    original = _sklearn_fast._function_source
    assert len(_sklearn_fast._SOURCES) == 8
    base = _sklearn_fast._fingerprint()
    for target in _sklearn_fast._SOURCES:
        def changed(text: str, name: str, target: tuple[str, str] = target) -> str:
            src = original(text, name)
            return src + " " if name == target[1] else src

        monkeypatch.setattr(_sklearn_fast, "_function_source", changed)
        assert _sklearn_fast._fingerprint() != base, target
    monkeypatch.setattr(_sklearn_fast, "_function_source", original)
    with pytest.raises(KeyError):
        original("def other():\n    pass\n", "make_moons")


def test_function_source_ends_at_the_next_top_level_line():
    text = "def f(\n    a,\n):\n    return a\n\n\nX = 1\ndef g():\n    pass\n"
    assert _sklearn_fast._function_source(text, "f") == "def f(\n    a,\n):\n    return a\n\n\n"
    assert _sklearn_fast._function_source(text, "g") == "def g():\n    pass\n"


@pytest.mark.parametrize("n, noise, seed", [(400, 0.2, 0), (100, 0.2, 12345), (401, 0.05, 7), (1, 0.3, 3),
                                            (2, None, 99), (57, 0.0, 2**31 - 2)])
def test_make_moons_is_scikit_learns(monkeypatch, n, noise, seed):
    """The replica is scikit-learn's make_moons bit for bit, for the release it was checked
    against; with any other release initlab does not use it (so a new scikit-learn cannot make
    initlab's data differ, nor this test fail for a replica nobody calls)."""
    from sklearn.datasets import make_moons

    X_ref, y_ref = make_moons(n, noise=noise, random_state=seed)
    if not _sklearn_fast.usable():
        monkeypatch.setattr(_sklearn_fast, "make_moons", _not_called)
        moons(40, 10, noise=0.2, rng=seed)  # scikit-learn's own make_moons, not the replica
        return
    X, y = _sklearn_fast.make_moons(n, noise=noise, random_state=seed)
    assert X.dtype == X_ref.dtype and y.dtype == y_ref.dtype
    assert X.shape == X_ref.shape and y.shape == y_ref.shape
    assert X.tobytes() == X_ref.tobytes() and y.tobytes() == y_ref.tobytes()


def test_load_digits_is_scikit_learns(monkeypatch):
    from sklearn.datasets import load_digits

    ref = load_digits()
    if not _sklearn_fast.usable():  # another release: the replica is not used
        monkeypatch.setattr(_sklearn_fast, "load_digits", _not_called)
        digits(rng=0)
        return
    data, target = _sklearn_fast.load_digits()
    assert data.dtype == ref.data.dtype and target.dtype == ref.target.dtype
    assert data.shape == ref.data.shape == (1797, 64)
    assert data.tobytes() == ref.data.tobytes() and target.tobytes() == ref.target.tobytes()


def _not_called(*args, **kwargs):
    raise AssertionError("the replica was used with a scikit-learn it was not checked against")


@pytest.mark.parametrize("fast", [True, False])
def test_moons_and_digits_same_with_and_without_the_replicas(monkeypatch, fast):
    """initlab's moons() and digits() give the same splits on either path (the fallback calls
    scikit-learn)."""
    ref_m = moons(40, 10, noise=0.2, rng=5)
    ref_d = digits(rng=5)
    monkeypatch.setattr(_sklearn_fast, "usable", lambda: fast)
    for a, b in zip(moons(40, 10, noise=0.2, rng=5), ref_m):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    for a, b in zip(digits(rng=5), ref_d):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_moons_and_digits_do_not_import_scikit_learn():
    """The point of the replicas: the report's data without scikit-learn's 1.3 s import."""
    code = ("import sys; from initlab.data.synthetic import moons; from initlab.data.offline import digits; "
            "moons(40, 10, rng=0); digits(rng=0); print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    if _sklearn_fast.usable():
        assert out.strip() == "[]"
    else:  # another scikit-learn release: scikit-learn itself makes the data
        assert "sklearn.datasets" in out
