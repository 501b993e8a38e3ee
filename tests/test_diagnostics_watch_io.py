"""Watch.save / Watch.load: a JSON file, no pickle, atomic; foreign and damaged files refused."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from initlab.diagnostics import Probe, Watch


def _engine_watch(std: str = "normal(std=1)", lr: float = 0.2) -> Watch:
    """A ReLU MLP watched on initlab's engine (Adam at a large lr: units die, verdicts appear)."""
    from initlab.nn import Network

    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 10)).astype(np.float32)
    Y = rng.standard_normal((256, 1)).astype(np.float32)
    net = Network([10, 32, 32, 1], "relu", init=std, rng=0)
    probe = Probe(every=2)
    net.fit(X, Y, epochs=3, batch_size=64, lr=lr, optimizer="adam", loss="mse", progress=False, rng=0,
            callbacks=[probe])
    return probe.watch


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_round_trip_is_exact(tmp_path):
    w = _engine_watch()
    assert w.verdicts  # the run has something to say
    path = w.save(str(tmp_path / "run.json"))
    back = Watch.load(path)
    assert isinstance(back, Watch) and back.every == w.every and back.model == w.model
    rows_a, rows_b = w.rows(), back.rows()
    assert len(rows_a) == len(rows_b) > 0
    for ra, rb in zip(rows_a, rows_b):
        assert ra.keys() == rb.keys()
        assert all(_same(ra[k], rb[k]) for k in ra), [k for k in ra if not _same(ra[k], rb[k])]
    for name in w.layer_names:
        sa, ea, ca = w.histograms(name)
        sb, eb, cb = back.histograms(name)
        assert np.array_equal(sa, sb) and np.array_equal(ea, eb) and np.array_equal(ca, cb)
        assert ca.dtype == cb.dtype
    assert [v.to_dict() for v in back.verdicts] == [v.to_dict() for v in w.verdicts]
    for ra, rb in zip(w.steps, back.steps):
        assert (ra.input_mean, ra.input_std, ra.input_cosine, ra.batch, ra.backward) == \
               (rb.input_mean, rb.input_std, rb.input_cosine, rb.batch, rb.backward)
        for la, lb in zip(ra.layers, rb.layers):
            assert la.grad_hist is not None and np.array_equal(la.grad_hist.counts, lb.grad_hist.counts)
            assert la.preact_hist is None or np.array_equal(la.preact_hist.edges, lb.preact_hist.edges)


def test_non_finite_values_survive_as_strict_json(tmp_path):
    w = _engine_watch()
    w.steps[-1].loss = float("inf")
    w.steps[-1].layers[0].mean = float("nan")
    path = w.save(str(tmp_path / "diverged.json"))
    text = Path(path).read_text(encoding="utf-8")
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = Watch.load(path)
    assert back.steps[-1].loss == math.inf and math.isnan(back.steps[-1].layers[0].mean)
    assert back.verdicts[-1].kind == "diverged" and back.verdicts[-1].step == w.steps[-1].step


def test_save_is_atomic_and_replaces(tmp_path):
    w = _engine_watch()
    target = tmp_path / "run.json"
    target.write_text("old")
    w.save(str(target))
    back = Watch.load(str(target))  # the old content is gone, the new one is whole
    assert [r["std"] for r in back.rows()] == [r["std"] for r in w.rows()]
    assert sorted(os.listdir(tmp_path)) == ["run.json"]  # no temporary file left


def test_save_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="'path'.*does not exist"):
        _engine_watch().save(str(tmp_path / "nope" / "run.json"))


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not JSON"),
    (b'{"format": "initlab-watch", "version": 1, "every": 2, "steps": [{"st', "not JSON"),
    (b'{"rows": []}', "marker"),
    (b'[1, 2, 3]', "marker"),
    (b'{"format": "initlab-watch", "version": 99, "every": 2, "steps": []}', "newer initlab"),
    (b'{"format": "initlab-watch", "version": 1, "every": 0, "steps": []}', "damaged"),
    (b'{"format": "initlab-watch", "version": 1, "every": 2, "steps": [{"step": 0}]}', "damaged"),
    (b'{"format": "initlab-watch", "version": 1, "every": 2, "steps": [{"step": 0, "layers": [{"index": 1}]}]}',
     "damaged"),
])
def test_load_refuses_foreign_and_damaged_files(tmp_path, content, reason):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=reason) as e:
        Watch.load(str(p))
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_load_refuses_a_truncated_real_file(tmp_path):
    path = _engine_watch().save(str(tmp_path / "run.json"))
    raw = Path(path).read_bytes()
    Path(path).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not JSON"):
        Watch.load(path)


def test_load_refuses_a_damaged_histogram(tmp_path):
    path = _engine_watch().save(str(tmp_path / "run.json"))
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data["steps"][0]["layers"][0]["hist"]["counts"].pop()
    Path(path).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="damaged.*edges"):
        Watch.load(path)


def test_load_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Watch.load(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="is a folder"):
        Watch.load(str(tmp_path))
    with pytest.raises(TypeError, match="'path'"):
        Watch.load(3)  # type: ignore[arg-type]


def test_torch_watch_round_trip_and_page(tmp_path):
    """A torch watch (op/module names, BatchNorm rows) saved, reloaded and rendered: the same rows,
    and a deep model's page shows at most 16 layers, those with a verdict among them."""
    torch = pytest.importorskip("torch")
    from _torch_models import train_mse
    from initlab.diagnostics import watch
    from initlab.report.watch import build_watch_report
    from initlab.studies._watchview import MAX_LAYERS, colordim_panels

    g = torch.Generator().manual_seed(0)
    layers: list = []
    for i in range(12):
        lin = torch.nn.Linear(16, 16)
        with torch.no_grad():
            lin.weight.normal_(0.0, 1.0, generator=g)
        layers += [lin, torch.nn.BatchNorm1d(16), torch.nn.ReLU()] if i % 4 == 3 else [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(64, 16, generator=g)
    y = torch.randn(64, 1, generator=g)
    with watch(model, every=1) as w:
        train_mse(model, opt, x, y, 3, w)
    back = Watch.load(w.save(str(tmp_path / "torch.json")))
    assert len(w.layer_names) > MAX_LAYERS
    for ra, rb in zip(w.rows(), back.rows()):
        assert all(_same(ra[k], rb[k]) for k in ra)
    assert [v.to_dict() for v in back.verdicts] == [v.to_dict() for v in w.verdicts]
    panels = colordim_panels(back)
    assert len(panels) == MAX_LAYERS
    flagged = {v.name for v in back.verdicts}
    assert flagged  # N(0, 1) weights: the probe has something to say
    shown = {p["title"].lstrip("…") for p in panels}
    assert all(any(name.endswith(t) for t in shown) for name in list(flagged)[:MAX_LAYERS])
    summary = build_watch_report(str(tmp_path / "torch.json"), tmp_path / "page")
    html = summary.index.read_text(encoding="utf-8")
    assert f"{MAX_LAYERS} of {len(w.layer_names)} layers shown" in html
    assert len(summary.figures) == 2


def test_notes_round_trip(tmp_path):
    """What the watch could not record (functional ops outside its modules) survives save/load."""
    torch = pytest.importorskip("torch")
    from initlab.diagnostics import watch

    class Functional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(8, 8)
            self.b = torch.nn.Linear(8, 1)

        def forward(self, x):
            return self.b(torch.nn.functional.relu(self.a(x)))

    g = torch.Generator().manual_seed(0)
    model = Functional()
    x = torch.randn(16, 8, generator=g)
    with watch(model, every=1) as w:
        loss = model(x).pow(2).mean()
        loss.backward()
        w.log_loss(loss)
    assert w.notes, "the functional relu is outside every watched module: the watch says so"
    back = Watch.load(w.save(str(tmp_path / "notes.json")))
    assert back.notes == w.notes
    data = json.loads((tmp_path / "notes.json").read_text(encoding="utf-8"))
    data["notes"] = [1]
    (tmp_path / "bad.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="notes"):
        Watch.load(str(tmp_path / "bad.json"))
