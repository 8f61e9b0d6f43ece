"""`cpiscope report` on a run with a tuned lens (`probe --lens tuned:PATH`) shows both lenses: the tuned
lens's M_C heatmap beside the logit lens's, and `mc_by_tuned_lens_layer.csv` equal to the mean over
probes of `tuned_mc_ratio` recomputed here with numpy (tolerance 1e-9). The lens is the tuned-lens
fixture (Tests/Fixtures/torch-bin/tuned-lens, trained for probe-trajectory). Skipped when the binary
is not built.

    swift build && python3 -m pytest Tests/python/test_report_tuned_lens.py
"""

import csv
import subprocess
from pathlib import Path

import pytest

from cli import BINARY, FIXTURE, ROOT, cpiscope, needs_binary, ok

np = pytest.importorskip("numpy")
h5py = pytest.importorskip("h5py")

LENS = ROOT / "Tests" / "Fixtures" / "torch-bin" / "tuned-lens"

pytestmark = needs_binary



def test_report_shows_both_lenses(tmp_path):
    run, report = tmp_path / "run.h5", tmp_path / "report"
    ok("probe", FIXTURE, "--probes", FIXTURE / "probes.jsonl", "--lens", f"tuned:{LENS}", "-o", run, "--quiet")
    ok("report", run, "-o", report, "--quiet")
    html = (report / "index.html").read_text()
    assert 'id="heatmap-mc-lens"' in html and 'id="heatmap-mc-tuned-lens"' in html
    with h5py.File(run) as f:
        tuned = f["tuned_mc_ratio"][:]            # (checkpoint, probe, lens_layer)
        names = [c.decode() for c in f["checkpoint"][:]]
    expected = np.nanmean(tuned.astype(np.float64), axis=1)
    rows = list(csv.DictReader((report / "mc_by_tuned_lens_layer.csv").open()))
    assert len(rows) == expected.size
    for r in rows:
        c, ll = names.index(r["checkpoint"]), int(r["lens_layer"])
        assert abs(float(r["mean_mc"]) - expected[c, ll]) <= 1e-9


def test_report_without_tuned_lens_has_no_tuned_section(tmp_path):
    run, report = tmp_path / "run.h5", tmp_path / "report"
    ok("probe", FIXTURE, "--probes", FIXTURE / "probes.jsonl", "-o", run, "--quiet")
    ok("report", run, "-o", report, "--quiet")
    assert 'heatmap-mc-tuned-lens' not in (report / "index.html").read_text()
    assert not (report / "mc_by_tuned_lens_layer.csv").exists()
