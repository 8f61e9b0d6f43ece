"""`cpiscope diff` and `cpiscope report` end to end through the built binary, on a run made in the
test from the fixture trajectory (Tests/Fixtures/probe-trajectory, random tiny Llama, 3 checkpoints
× 6 probes). Numbers are recomputed here with numpy from the HDF5 (h5py), tolerance 1e-9; the
bootstrap is checked for reproducibility; unmatched runs, non-runs, other schema versions and bad
option combinations must fail with `error:` + `hint:` lines. Skipped when the binary is not built.

    swift build && python3 -m pytest Tests/python/test_cli_diff_report.py
"""

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from cli import BINARY, FIXTURE, ROOT, cpiscope, needs_binary, ok

np = pytest.importorskip("numpy")
h5py = pytest.importorskip("h5py")


pytestmark = needs_binary




@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    full, part = d / "run.h5", d / "part.h5"
    ok("probe", FIXTURE, "--probes", FIXTURE / "probes.jsonl", "-o", full, "--force", "--quiet")
    ok("probe", FIXTURE, "--probes", FIXTURE / "probes.jsonl", "-o", part, "--force", "--quiet", "--checkpoints", "0,20")
    return d, full, part


def test_diff_json_recomputed(runs):
    """Per-head, per-layer, lens and accuracy changes first -> last equal numpy on the HDF5."""
    _, run, _ = runs
    out = json.loads(ok("diff", run, "--format", "json", "--resamples", "200", "--seed", "4"))
    with h5py.File(run, "r") as f:
        mass = f["attention_mass"][:].astype(float)
        spans = [s.decode() if isinstance(s, bytes) else s for s in f["span"][:]]
        mc = f["mc_ratio"][:].astype(float)
        cf = f["counterfactual_correct"][:].astype(float)
    ctx = mass[:, :, spans.index("context")]  # [checkpoint, probe, layer, head]
    d = out["diffs"][0]
    assert (d["from"]["name"], d["to"]["name"]) == ("checkpoint-0", "checkpoint-20")
    worst = 0.0
    seen = set()
    for h in d["heads"]:
        a, b = ctx[0, :, h["layer"], h["head"]], ctx[-1, :, h["layer"], h["head"]]
        keep = np.isfinite(a) & np.isfinite(b)
        worst = max(worst, abs(h["change"]["value"] - float(np.mean(b[keep] - a[keep]))),
                    abs(h["mean_from"] - float(np.mean(a[keep]))), abs(h["mean_to"] - float(np.mean(b[keep]))))
        assert h["change"]["n"] == int(keep.sum())
        assert h["change"]["ci_low"] <= h["change"]["value"] <= h["change"]["ci_high"]
        seen.add((h["layer"], h["head"]))
    assert len(seen) == ctx.shape[2] * ctx.shape[3]
    changes = [abs(h["change"]["value"]) for h in d["heads"]]
    assert changes == sorted(changes, reverse=True), "heads ranked by |change|"
    for l in d["layers"]:
        a, b = np.nanmean(ctx[0, :, l["layer"]], axis=1), np.nanmean(ctx[-1, :, l["layer"]], axis=1)
        worst = max(worst, abs(l["change"]["value"] - float(np.nanmean(b - a))))
    for l in d["lens_mc"]:
        a, b = mc[0, :, l["lens_layer"]], mc[-1, :, l["lens_layer"]]
        keep = np.isfinite(a) & np.isfinite(b)
        worst = max(worst, abs(l["change"]["value"] - float(np.mean(b[keep] - a[keep]))))
    acc = {m["measure"]: m for m in d["measures"]}["counterfactual_accuracy"]
    worst = max(worst, abs(acc["change"]["value"] - float(np.mean(cf[-1] - cf[0]))))
    curve = {t["id"]: t for t in out["headline"]["trajectories"]}["context_attention"]["values"]
    want = np.nanmean(np.nanmean(ctx.reshape(ctx.shape[0], ctx.shape[1], -1), axis=2), axis=1)
    worst = max(worst, float(np.max(np.abs(np.array(curve) - want))))
    assert worst <= 1e-9, f"max |diff| = {worst}"


def test_bootstrap_reproducible(runs):
    _, run, _ = runs
    a = ok("diff", run, "--format", "json", "--seed", "9", "--resamples", "300")
    b = ok("diff", run, "--format", "json", "--seed", "9", "--resamples", "300")
    c = ok("diff", run, "--format", "json", "--seed", "10", "--resamples", "300")
    assert a == b
    assert a != c


def test_table_csv_each_span(runs):
    _, run, _ = runs
    table = ok("diff", run, "--top", "3", "--resamples", "50")
    for heading in ["attention by head", "by layer", "logit-lens M_C", "== measures", "== trajectories", "Spearman"]:
        assert heading in table
    rows = list(csv.DictReader(io.StringIO(ok("diff", run, "--format", "csv", "--each", "--span", "subject", "--resamples", "50"))))
    sections = {r["section"] for r in rows}
    assert {"head", "layer", "lens_mc", "measure", "trajectory", "spearman"} <= sections
    pairs = {(r["from"], r["to"]) for r in rows if r["section"] == "head"}
    assert pairs == {("checkpoint-0", "checkpoint-10"), ("checkpoint-0", "checkpoint-20")}
    assert all(r["measure"] == "subject_attention" for r in rows if r["section"] == "head")


def test_against_and_refusals(runs, tmp_path):
    d, run, part = runs
    same = json.loads(ok("diff", run, "--against", run, "--format", "json", "--resamples", "50"))
    for m in same["comparison"]["measures"]:
        assert all(e["value"] in (0.0, None) for e in m["difference_b_minus_a"])

    def refused(args, needle):
        r = cpiscope(*args)
        assert r.returncode != 0, f"{args} should fail"
        assert needle in r.stderr, r.stderr
        return r

    r = refused(["diff", run, "--against", part], "cannot be compared")
    assert "hint:" in r.stderr
    notes = tmp_path / "notes.h5"
    notes.write_text("not hdf5")
    assert "hint:" in refused(["diff", notes], "is not a cpiscope probe run").stderr
    v2 = tmp_path / "v2.h5"
    with h5py.File(v2, "w") as f:
        f.attrs["cpiscope_schema_version"] = np.int64(3)
    refused(["diff", v2], "cpiscope_schema_version is 3")
    refused(["diff", run, "--from", "checkpoint-99"], "no complete checkpoint 'checkpoint-99'")
    refused(["diff", run, "--span", "elbow"], "no span 'elbow'")
    refused(["diff", run, "--each", "--to", "20"], "--each")
    refused(["report", run, "-o", notes], "cannot create report directory")


def test_report_command(runs, tmp_path):
    _, run, _ = runs
    out = tmp_path / "rep"
    text = ok("report", run, "-o", out, "--resamples", "50")
    assert "wrote" in text and "Counterfactual accuracy" in text
    html = (out / "index.html").read_text()
    for i in ["chart-accuracy", "heatmap-context-layers", "heatmap-heads", "heatmap-heads-change", "chart-lens-context", "probe-table"]:
        assert f'id="{i}"' in html
    assert "<script" not in html and "https://" not in html
    md = (out / "report.md").read_text()
    assert "## Verdict" in md
    # 11 tables, plus 6 of direct logit attribution for a schema-version-2 run (the fixture's).
    with h5py.File(run, "r") as f:
        version = int(f.attrs["cpiscope_schema_version"])
    assert len(list(out.glob("*.csv"))) == (17 if version >= 2 else 11)
    if version >= 2:
        for i in ["chart-dla-heads", "chart-dla-components", "heatmap-dla-first", "heatmap-dla-spans", "dla-role-changes"]:
            assert f'id="{i}"' in html
        assert "## Direct logit attribution" in md and "context heads at" in text


def test_help_teaches():
    for cmd in ["diff", "report"]:
        h = ok(cmd, "--help")
        assert "Examples:" in h and f"cpiscope {cmd}" in h
