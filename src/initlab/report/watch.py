"""``initlab watch-report``: one saved :class:`~initlab.diagnostics.Watch` as an HTML page.

The page is the report's (same template, renderer and figure legibility rules,
:mod:`initlab.report.page` and :mod:`initlab.report.plots`) with one section: a one-sentence
takeaway, the colorful-dimension plot (per layer: the activation histogram over the recorded
steps, log counts, the first step of each of the layer's problems marked), then the per-layer
mean / std / near-zero / dead fraction / update size and the loss over the steps, the verdicts
over time (each problem once, with its layer, its first step and the fix) and a per-layer table.
``results.json`` beside it holds every number.

The folder is written as the report is (:mod:`initlab.report.build`): into a temporary folder,
swapped in when complete; a folder that holds other files and no initlab report is refused.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab import _workers
from initlab._json import to_jsonable
from initlab._validation import bad_type
from initlab.studies._result import StudyResult

__all__ = ["watch_result", "build_watch_report", "WatchReportSummary"]


@dataclass
class WatchReportSummary:
    """What :func:`build_watch_report` wrote."""

    out_dir: Path
    index: Path
    results_json: Path
    figures: list[Path]
    verdicts: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "index": str(self.index), "results_json": str(self.results_json),
                "figures": [str(p) for p in self.figures], "verdicts": self.verdicts,
                "seconds": round(self.seconds, 3)}


def watch_result(watch: Any, *, source: str = "watch", command: str = "") -> StudyResult:
    """The page's content for ``watch`` as a :class:`~initlab.studies.StudyResult` (plain data)."""
    from initlab.studies._watchview import MAX_LAYERS, MAX_LINES, colordim_figure, curves_figure, layer_table, verdict_table

    steps = [s.step for s in watch.steps]
    if not steps:
        raise ValueError(f"The watch {source!r} recorded no step; there is nothing to show.")
    span = f"steps {steps[0]}–{steps[-1]}" if len(steps) > 1 else f"step {steps[0]}"
    vs = watch.verdicts
    if vs:
        from initlab.studies.watch import dying

        first, died = vs[0], dying(watch)
        head = f"{len(vs)} problem{'s' if len(vs) > 1 else ''} over {span}; "
        if died is not None and died.kind == "diverged":
            takeaway = head + f"the run diverged at step {died.step}."
        elif died is not None:
            takeaway = head + (f"{died.name} is dead from step {died.step} (on {died.n_steps} of {len(steps)} "
                               "recorded steps).")
        else:
            takeaway = head + f"the first, at step {first.step}: {first.kind.replace('_', ' ')} at {first.name}."
        verdict = " ".join(f"Step {v.step}, {v.name}: {v.kind.replace('_', ' ')}"
                           f" ({v.n_steps} recorded step{'s' if v.n_steps != 1 else ''})."
                           for v in vs[:6]) + (f" And {len(vs) - 6} more in the table." if len(vs) > 6 else "")
        fix = next((v.recommendation for v in vs if v.recommendation), "")
        if fix:
            verdict += f" Fix first: {fix}."
    else:
        takeaway = f"No problem at any of the {len(steps)} recorded steps ({span})."
        verdict = "The probe's verdict engine found nothing at any recorded step."
    name = Path(source).name
    n_layers = len(watch.layer_names)
    shown = "" if n_layers <= MAX_LAYERS else f" {MAX_LAYERS} of {n_layers} layers shown (those with a problem first)."
    lines = "" if n_layers <= MAX_LINES else f" {MAX_LINES} of {n_layers} layers drawn."
    figures = [
        colordim_figure([("", watch)], title=f"Each layer's activations over {span}",
                        caption="Per layer: x = step, y = activation value, colour = log(1 + count) of the layer's "
                                "histogram (fixed edges per layer); red: the first step of each of the layer's problems."
                                + shown),
        curves_figure(watch, title="Each layer's statistics and the loss over the steps",
                      caption="One line per layer; near-zero: |x| ≤ 0.05; dead: units inactive on the whole batch; "
                              "update: ‖ΔW‖/‖W‖ of the optimizer step after the recorded one." + lines),
    ]
    losses = [s.loss for s in watch.steps if s.loss is not None]
    return StudyResult(
        study="watch", title=f"Watch: {name}",
        config={"watch_file": source, "every": watch.every, "model": watch.model, "recorded_steps": len(steps),
                "layers": watch.layer_names},
        numbers={"steps": steps, "verdicts": [v.to_dict() for v in vs],
                 "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None},
        tables=[verdict_table([("", watch)]), layer_table(watch)],
        figures=figures, summary=takeaway, takeaway=takeaway, headline="colordim", verdict=verdict,
        command=command,
    )


def build_watch_report(source: Any, out_dir: str | os.PathLike[str], *, command: str | None = None) -> WatchReportSummary:
    """Write the page of a Watch (a :class:`~initlab.diagnostics.Watch` or the path of a saved one)
    into ``out_dir`` (index.html, results.json, PNG figures), atomically.

    ValueError for a file that is not a watch, a watch with no recorded step, or an ``out_dir``
    that cannot be written or holds other files; FileNotFoundError for a missing file.
    """
    from initlab.diagnostics import Watch
    import importlib

    _build = importlib.import_module("initlab.report.build")  # the module (initlab.report.build is the function)
    from initlab.report import plots
    from initlab.report.page import render_page

    t0 = time.perf_counter()
    if isinstance(source, Watch):
        watch, label = source, "watch"
    elif isinstance(source, (str, os.PathLike)):
        label = os.fspath(source)
        watch = Watch.load(label)
    else:
        bad_type("source", "a Watch or the path of a saved watch (.json)", source)
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        raise ValueError(f"The 'out_dir' argument must name a folder; got {out_dir!r}.")
    out = Path(out_dir).expanduser().resolve()
    if not out.parent.is_dir():
        raise ValueError(f"The 'out_dir' argument must be inside an existing folder; {str(out.parent)!r} is not one.")
    if command is None:
        command = shlex.join(["initlab", "watch-report", label, "--out", str(out_dir)])
    result = watch_result(watch, source=label, command=command)
    _build._clean_stale(out)
    _build._check_replaceable(out)
    provenance = _build._provenance(command, 0, False, ["watch"], None)
    provenance["watch_file"] = label
    with _workers.sigterm_as_exit():
        tmp = _build._make_tmp(out)
        try:
            files: dict[tuple[str, str], str] = {}
            errors: dict[tuple[str, str], str] = {}
            for f in result.figures:
                fname = f"watch_{f.name}.png"
                try:
                    plots.render(f, tmp / fname)
                except Exception as e:  # one bad figure must not lose the page
                    errors[(result.study, f.name)] = f"{type(e).__name__}: {e}"
                else:
                    files[(result.study, f.name)] = fname
            provenance["seconds"] = time.perf_counter() - t0
            payload = {"provenance": provenance,
                       "studies": {result.study: {**result.to_dict(),
                                                  "figure_files": {f.name: files.get((result.study, f.name))
                                                                   for f in result.figures}}}}
            (tmp / "results.json").write_text(json.dumps(to_jsonable(payload), indent=1, allow_nan=False),
                                              encoding="utf-8")
            steps = [s.step for s in watch.steps]
            code = (f"from initlab.diagnostics import Watch\nw = Watch.load({label!r})\nprint(w)\n"
                    "w.to_pandas()  # one row per (step, layer)") if label != "watch" else \
                "w.save('run.json')  # then: initlab watch-report run.json --out DIR"
            html = render_page([result], provenance=provenance, figure_files=files, figure_errors=errors,
                               quick=False, seed=0, full_command=command,
                               page={"kind": "watch", "title": f"initlab watch: {Path(label).name}",
                                     "heading": f"Watching training: {Path(label).name}",
                                     "summary_heading": "What the watch found",
                                     "subtitle": f"{len(steps)} recorded steps, every {watch.every}, "
                                                 f"{len(watch.layer_names)} layers ({watch.model})",
                                     "python_code": code})
            (tmp / "index.html").write_text(html, encoding="utf-8")
            os.chmod(tmp, 0o755)
            _build._swap_in(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return WatchReportSummary(out_dir=out, index=out / "index.html", results_json=out / "results.json",
                              figures=[out / v for v in sorted(files.values())],
                              verdicts=[v.to_dict() for v in watch.verdicts], seconds=time.perf_counter() - t0)
