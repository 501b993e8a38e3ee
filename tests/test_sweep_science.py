"""Science: on a small tanh grid the trainable region lies below a few ξ_c and shrinks away from
the critical line (Schoenholz et al. 2017); and the trainability study reports it."""

from __future__ import annotations

import json
from pathlib import Path

from initlab.studies.trainability import TrainabilityConfig, trainability, trainability_spec
from initlab.sweep import SweepStore, heatmap_data, run_sweep, trainable_boundary


def test_trainable_region_follows_xi_c(tmp_path: Path) -> None:
    cfg = TrainabilityConfig.make()  # tanh width 32, σ_b² 0.05, 10 σ_w² × depths 2..32, digits, 300 steps
    run_sweep(trainability_spec(cfg), tmp_path / "s.db", executor="process", workers=2)
    with SweepStore.read(tmp_path / "s.db") as st:
        rows = st.rows()
    assert len(rows) == 50 and not any(r["diverged"] for r in rows)
    data = heatmap_data(rows)
    crit = data["critical_x"]
    assert abs(crit - 1.761) < 1e-3
    b = trainable_boundary(data, 0.5)
    chance = 0.1 + 3 * (0.1 * 0.9 / 1437) ** 0.5  # digits: 10 balanced classes, 1437 training images
    # 1. depth below one ξ_c always trains well; deeper than 10 ξ_c never beats chance by much
    for r in rows:
        if r["depth"] <= r["xi_c"]:
            assert r["train_accuracy"] >= 0.8, r
        if r["depth"] >= 10 * r["xi_c"]:
            assert r["train_accuracy"] <= 0.5, r
    # 2. the boundary exists inside the grid away from the critical line, and lies at a few ξ_c
    ratios = [x for x in b["ratio"] if x is not None]
    assert len(ratios) >= 6 and max(ratios) <= 10 and min(ratios) >= 1
    # 3. it is deepest next to the critical line and shrinks monotonically away from it on both sides
    depth = [d or 0 for d in b["depth"]]
    i_crit = min(range(len(b["x"])), key=lambda i: abs(b["x"][i] - crit))
    assert depth[i_crit] == max(depth) == 32
    assert all(depth[i] <= depth[i + 1] for i in range(i_crit))
    assert all(depth[i] >= depth[i + 1] for i in range(i_crit, len(depth) - 1))
    assert depth[0] <= 4 and depth[-1] <= 8
    # the deepest nets far from criticality do not train: at chance on the ordered side, below the
    # boundary's 0.5 threshold on the chaotic side
    deep = {r["sigma_w2"]: r["train_accuracy"] for r in rows if r["depth"] == 32}
    assert deep[0.25] < chance and deep[16.0] < 0.5


def test_trainability_study_quick() -> None:
    r = trainability(TrainabilityConfig.make(quick=True, seed=0))
    assert r.ok and r.study == "trainability"
    json.dumps(r.to_dict(), allow_nan=False)
    t = r.table("boundary")
    assert t.column("σ_w²") == [0.25, 0.75, 1.76, 4.0, 16.0]
    fig = r.figures[0]
    assert fig.kind == "trainability_heatmap" and len(fig.data["z"]) == 4
    assert "ξ_c" in r.summary and r.numbers["cells"] == 20
    from initlab.report.plots import KINDS

    f = KINDS[fig.kind](fig)
    assert len(f.axes) == 2  # heat map and colorbar
    import matplotlib.pyplot as plt

    plt.close(f)
