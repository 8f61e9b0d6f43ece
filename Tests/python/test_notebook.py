"""Executes Notebooks-out/example.ipynb's code cells against a probe run made in the test, and
checks what the notebook computes (with xarray) against what cpiscope computes (in Swift):
`cpiscope diff --format json` trajectories and `cpiscope report`'s context_attention_by_layer.csv.
Tolerance 1e-9 (both read the same float32 values and average them in float64).

Needs the built binary (`swift build`); skipped when it is missing. No Jupyter needed: the
notebook JSON is parsed and each code cell is exec'd in one namespace, in order. Run:

    swift build && python3 -m pytest Tests/python/test_notebook.py
"""

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("h5py")
pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".build" / "debug" / "cpiscope"
FIXTURE = ROOT / "Tests" / "Fixtures" / "probe-trajectory"
NOTEBOOK = ROOT / "Notebooks-out" / "example.ipynb"

pytestmark = pytest.mark.skipif(not BINARY.exists(), reason="build cpiscope first: swift build")


def cpiscope(*args, check=True):
    r = subprocess.run([str(BINARY), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"cpiscope {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("notebook") / "run.h5"
    cpiscope("probe", FIXTURE, "--probes", FIXTURE / "probes.jsonl", "-o", path, "--force", "--quiet")
    return path


def code_cells():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells, "the notebook has code cells"
    for c in cells:
        assert c.get("outputs", []) == [], "commit the notebook without outputs"
    return ["".join(c["source"]) for c in cells]


def execute(run, monkeypatch, tmp_path):
    monkeypatch.setenv("CPISCOPE_RUN", str(run))
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__notebook__"}
    for i, src in enumerate(code_cells()):
        try:
            exec(compile(src, f"example.ipynb cell {i}", "exec"), ns)
        except Exception as e:  # name the cell that failed
            raise AssertionError(f"notebook code cell {i} failed: {e!r}\n{src}") from e
    return ns


def test_notebook_matches_cpiscope_diff(run, monkeypatch, tmp_path):
    """The notebook's curves equal the trajectories of `cpiscope diff --format json`."""
    ns = execute(run, monkeypatch, tmp_path)
    out = json.loads(cpiscope("diff", run, "--format", "json", "--resamples", "50").stdout)
    traj = {t["id"]: t["values"] for t in out["headline"]["trajectories"]}
    assert list(ns["steps"]) == [c["step"] for c in out["checkpoints"]]
    worst = 0.0
    for name, values in ns["curve"].items():
        want = np.array([np.nan if v is None else v for v in traj[name]], dtype=float)
        worst = max(worst, float(np.nanmax(np.abs(np.asarray(values, dtype=float) - want))))
    assert worst <= 1e-9, f"notebook vs cpiscope diff: max |diff| = {worst}"
    # The chart was drawn or written (matplotlib is optional).
    if ns.get("plt") is None:
        svg = Path(ns["chart_path"]).read_text()
        assert svg.count("<polyline") == 2 and "training step" in svg


def test_notebook_matches_report_heatmap(run, monkeypatch, tmp_path):
    """The notebook's layer × checkpoint heatmap equals the report's context_attention_by_layer.csv."""
    ns = execute(run, monkeypatch, tmp_path)
    report = tmp_path / "report"
    cpiscope("report", run, "-o", report, "--resamples", "50", "--quiet")
    grid = ns["layer_context"]
    names = list(grid["checkpoint"].values)
    rows = list(csv.DictReader((report / "context_attention_by_layer.csv").open()))
    assert len(rows) == grid.shape[0] * grid.shape[1]
    worst = 0.0
    for r in rows:
        got = float(grid.values[int(r["layer"]), names.index(r["checkpoint"])])
        worst = max(worst, abs(got - float(r["mean_attention"])))
    assert worst <= 1e-9, f"notebook vs report CSV: max |diff| = {worst}"


def test_notebook_dla_matches_cpiscope_diff(run, monkeypatch, tmp_path):
    """The notebook's top context and memory heads at the accuracy peak are `cpiscope diff`'s first
    ranked heads there (headline.dla.rankings[1], the peak), with the same mean DLA."""
    ns = execute(run, monkeypatch, tmp_path)
    out = json.loads(cpiscope("diff", run, "--format", "json", "--resamples", "50").stdout)
    dla = out["headline"].get("dla")
    if dla is None:
        assert ns["top_context_head"] is None
        return
    peak = dla["rankings"][1]
    # The peak, or the final checkpoint when accuracy is constant (no peak): the notebook follows the same rule.
    assert peak["checkpoint"] == ns["dla_checkpoint"]
    if dla.get("peak"):
        assert peak["checkpoint"] == dla["peak"]["name"]
    for key, heads in [("top_context_head", peak["context_heads"]), ("top_memory_head", peak["memory_heads"])]:
        if not heads:
            continue
        layer, head, mean = ns[key]
        assert (layer, head) == (heads[0]["layer"], heads[0]["head"]), f"{key}: notebook L{layer}H{head} vs {heads[0]}"
        assert abs(mean - heads[0]["value"]) <= 1e-9
