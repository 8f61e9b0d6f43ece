"""`cpiscope criticality` as a user meets it (issue 18): the file opens in h5py and xarray with named
dimensions, the CLI refuses bad inputs with the file and row named and a non-zero exit (keeping what was
written), the filter writes the data in its own format, and `report` draws the criticality section.

Run: swift build && python3 -m pytest Tests/python/test_criticality.py
"""
import csv
import json

import pytest

from cli import ROOT, cpiscope, needs_binary, ok

h5py = pytest.importorskip("h5py")
xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

ROWS = [
    {"instruction": "What is the capital of France?", "input": "Paris is the capital of France.", "output": "Paris"},
    {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."},
    {"instruction": "Who founded Zorblat Inc.?", "input": "Zorblat Inc. was founded by Mira Okonkwo in 1987.", "output": "Mira Okonkwo founded it."},
    {"instruction": "Empty", "input": "x", "output": ""},
    {"instruction": "Where is Zürich?", "input": "Zürich lies in Switzerland.", "output": "In Switzerland."},
]
TRAJ = ROOT / "Demo" / "full-ft"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("crit")
    data = d / "data.json"
    data.write_text(json.dumps(ROWS, ensure_ascii=False, indent=4), encoding="utf-8")
    out = d / "crit.h5"
    stdout = ok("criticality", TRAJ, "--checkpoints", "0,250,500", "--data", data, "--template", "plain", "-o", out,
                "--filter-lowest", "50%", "--write-filtered", d / "filtered.json", "--csv", d / "table.csv", "--quiet")
    assert "skipped example 3: empty response" in stdout and "removed 1 examples" in stdout
    return d, out


@needs_binary
def test_xarray_opens_with_named_dims(run):
    _, out = run
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert not [k for k in ds.dims if k.startswith("phony")]
        assert dict(ds.sizes) == {"checkpoint": 3, "example": 5}
        assert list(ds.step.values) == [0, 250, 500]
        assert list(ds.has_context.values) == [1, 0, 1, 1, 1]
        assert ds.criticality.dims == ("checkpoint", "example")
        crit = ds.criticality.values
        nll = ds.nll_without_context.values
        finite = ~(crit != crit)
        assert abs(crit[finite] - __import__("numpy").exp(nll[finite])).max() <= 1e-3 * crit[finite].max()
        assert ds.attrs["cpiscope_criticality_schema_version"] == 1
        assert ds.attrs["template_name"] == "plain" and ds.attrs["filter_lowest_percent"] == 50.0


@needs_binary
def test_h5py_strings_and_skip_reasons(run):
    _, out = run
    with h5py.File(out, "r") as f:
        reasons = [r.decode() for r in f["skip_reason"][...]]
        assert reasons[3] == "empty response" and reasons[0] == ""
        assert f["skipped"][3] == 1 and f["checkpoint_complete"][...].tolist() == [1, 1, 1]


@needs_binary
def test_filtered_file_keeps_format_and_order(run):
    d, _ = run
    kept = json.loads((d / "filtered.json").read_text(encoding="utf-8"))
    removed = json.loads((d / "filtered.removed.json").read_text(encoding="utf-8"))
    assert len(kept) == 4 and removed["count_with_context"] == 3 and len(removed["removed"]) == 1
    gone = removed["removed"][0]["index"]
    assert kept == [r for i, r in enumerate(ROWS) if i != gone]
    rows = list(csv.DictReader(open(d / "table.csv", encoding="utf-8")))
    with_ctx = [r for r in rows if r["has_context"] == "1" and r["criticality"]]
    assert gone == int(min(with_ctx, key=lambda r: (float(r["criticality"]), int(r["example"])))["example"])


@needs_binary
def test_report_has_the_criticality_section(run, tmp_path):
    _, out = run
    stdout = ok("report", out, "-o", tmp_path / "rep", "--resamples", "200")
    html = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    for ident in ["crit-headline", "crit-histogram", "crit-groups", "chart-groups-paper", "heatmap-criticality-hist"]:
        assert f'id="{ident}"' in html
    assert "paper split" in stdout
    curves = list(csv.DictReader(open(tmp_path / "rep" / "group_curves.csv", encoding="utf-8")))
    assert {r["group"] for r in curves} >= {"C", "S"}


@needs_binary
@pytest.mark.parametrize("text, needle", [
    ('[{"instruction": "Q", "output": "R"}, {"input": "C", "output": "R"}]', "row 2 has no 'instruction' field"),
    ("instruction,input,output\nQ,C,R\n", "not JSON"),
    ('{"instruction": "Q", "output": 3}\n', "'output' is a number, not a string"),
])
def test_bad_data_is_refused_and_the_old_output_kept(tmp_path, text, needle):
    data = tmp_path / "bad.json"
    data.write_text(text, encoding="utf-8")
    out = tmp_path / "keep.h5"
    out.write_bytes(b"precious")
    r = cpiscope("criticality", TRAJ / "checkpoint-0", "--data", data, "-o", out, "--force")
    assert r.returncode != 0
    assert needle in r.stderr and str(data) in r.stderr and "hint:" in r.stderr
    assert out.read_bytes() == b"precious"


@needs_binary
def test_invalid_utf8_names_the_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_bytes(b'{"instruction": "Q", "output": "R"}\n{"instruction": "\xff", "output": "R"}\n')
    r = cpiscope("criticality", TRAJ / "checkpoint-0", "--data", data, "-o", tmp_path / "o.h5")
    assert r.returncode != 0 and "invalid UTF-8 on line 2" in r.stderr
    assert not (tmp_path / "o.h5").exists()


@needs_binary
def test_chat_rows_with_categories_get_a_loss_curve_each(tmp_path):
    rows = [{"dataset": ["flan", "oasst", "sharegpt"][k % 3], "id": f"r{k}",
             "messages": [{"role": "user", "content": f"Name fact {k}."}, {"role": "assistant", "content": f"Fact {k} is true."}]}
            for k in range(9)]
    data = tmp_path / "tulu.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "c.h5"
    ok("criticality", TRAJ, "--checkpoints", "0,500", "--data", data, "--template", "plain", "-o", out, "--quiet")
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert [c for c in ds.category.values] == [r["dataset"] for r in rows]
        assert int(ds.has_context.sum()) == 0
    ok("report", out, "-o", tmp_path / "rep", "--resamples", "100")
    html = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert 'id="chart-groups-category"' in html
    curves = list(csv.DictReader(open(tmp_path / "rep" / "group_curves.csv", encoding="utf-8")))
    assert {r["group"] for r in curves if r["grouping"] == "category"} == {"flan", "oasst", "sharegpt"}


@needs_binary
def test_timing_reports_scoring_against_the_roofline(tmp_path):
    """CPISCOPE_TIMING=1 (issue 26): the job layer measures the roofline on the first checkpoint and the
    scoring phase is reported with its work's bound and the % of the roofline it reached."""
    import os
    import re
    import subprocess

    from cli import BINARY
    data = tmp_path / "data.json"
    data.write_text(json.dumps(ROWS[:3]), encoding="utf-8")
    r = subprocess.run([str(BINARY), "criticality", TRAJ / "checkpoint-0", "--data", data, "--template", "plain",
                        "-o", tmp_path / "c.h5", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "CPISCOPE_TIMING": "1"})
    assert r.returncode == 0, r.stderr
    assert re.search(r"timing: roofline: ceiling [0-9.]+ GFLOP/s .*bandwidth [0-9.]+ GB/s", r.stderr), r.stderr
    line = next((l for l in r.stderr.splitlines() if "teacher-forced scoring passes" in l), None)
    assert line and re.search(r"bound +[0-9.]+ s \((compute|memory)\) +at +[0-9]+% of the roofline", line), r.stderr
    # Without the variable nothing is printed.
    quiet = subprocess.run([str(BINARY), "criticality", TRAJ / "checkpoint-0", "--data", data, "--template", "plain",
                            "-o", tmp_path / "d.h5", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={k: v for k, v in os.environ.items() if k != "CPISCOPE_TIMING"})
    assert quiet.returncode == 0 and "timing:" not in quiet.stderr
