"""`cpiscope diff` and `cpiscope report` on an intervention file, end to end through the built binary:
the file is made in the test with `cpiscope intervene` on the fixture trajectory (3 checkpoints × 6
probes). diff's JSON means are recomputed with numpy from the HDF5 (h5py; mean over probes of
intervened − clean where both are finite, tolerance 1e-9), the ranking order is checked, the CSV and
JSON agree, the report has a section per kind present, and probe-run options are refused.

    swift build && python3 -m pytest Tests/python/test_cli_interventions.py
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
def ivfile(tmp_path_factory):
    d = tmp_path_factory.mktemp("iv")
    f = d / "iv.h5"
    ok("intervene", FIXTURE, "--probes", FIXTURE / "probes.jsonl", "--checkpoints", "0,20", "--ablate", "heads:all",
       "--knockout", "context@all", "--transplant-from", "checkpoint-20", "--components", "attn.ov,mlp",
       "-o", f, "--force")
    return d, f


def test_diff_json_recomputed(ivfile):
    _, f = ivfile
    out = json.loads(ok("diff", f, "--format", "json", "--checkpoint", "0", "--resamples", "200"))
    assert out["checkpoint"] == {"name": "checkpoint-0", "step": 0} and out["ranked_by"] == "logit-diff"
    with h5py.File(f, "r") as h:
        names = [n.decode() if isinstance(n, bytes) else n for n in h["intervention"][:]]
        clean, diff = h["clean_logit_diff"][0].astype(np.float64), h["intervened_logit_diff"][0].astype(np.float64)
        cmc, mc = h["clean_mc"][0].astype(np.float64), h["intervened_mc"][0].astype(np.float64)
    assert out["total"] == len(names)
    worst = 0.0
    for row in out["interventions"]:
        i = names.index(row["intervention"])
        for key, a, b in [("logit_diff_change", clean, diff[i]), ("mc_change", cmc, mc[i])]:
            d = (b - a)[np.isfinite(a) & np.isfinite(b)]
            worst = max(worst, abs(row[key]["value"] - d.mean()))
            assert row[key]["n"] == len(d) and row[key]["ci_low"] <= row[key]["ci_high"]
    assert worst <= 1e-9, f"max |diff| = {worst}"
    mags = [abs(r["logit_diff_change"]["value"]) for r in out["interventions"]]
    assert mags == sorted(mags, reverse=True)
    assert [r["rank"] for r in out["interventions"]] == list(range(1, len(mags) + 1))


def test_diff_csv_and_table(ivfile):
    _, f = ivfile
    rows = list(csv.DictReader(io.StringIO(ok("diff", f, "--format", "csv", "--kind", "transplant", "--by", "mc", "--resamples", "100"))))
    js = json.loads(ok("diff", f, "--format", "json", "--kind", "transplant", "--by", "mc", "--resamples", "100"))
    assert [r["intervention"] for r in rows] == [r["intervention"] for r in js["interventions"]]
    assert all(r["kind"] == "transplant" and r["checkpoint"] == "checkpoint-20" for r in rows)
    assert float(rows[0]["mc_ci_low"]) == js["interventions"][0]["mc_change"]["ci_low"]
    table = ok("diff", f, "--top", "4", "--resamples", "100")
    assert "ranked by |Δ logit diff|: top 4 of" in table and "headline: At checkpoint-20, transplanting" in table


def test_refusals(ivfile):
    _, f = ivfile
    r = cpiscope("diff", f, "--from", "0")
    assert r.returncode != 0 and "apply to probe runs" in r.stderr
    r = cpiscope("diff", f, "--kind", "patch")
    assert r.returncode != 0 and "no 'patch' interventions" in r.stderr and "hint:" in r.stderr
    r = cpiscope("diff", f, "--by", "cf")
    assert r.returncode != 0 and "cf needs generations" in r.stderr


def test_report(ivfile):
    d, f = ivfile
    out = d / "report"
    text = ok("report", f, "-o", out, "--resamples", "100")
    assert "transplanting" in text and (out / "index.html").exists()
    html = (out / "index.html").read_text()
    for sid in ["iv-headline", "iv-ablation", "iv-transplant", "iv-knockout", "iv-ranking", "heatmap-ablation-heads-1", "table-transplant-1"]:
        assert f'id="{sid}"' in html, sid
    assert 'id="iv-patching"' not in html and "<script" not in html
    assert sorted(p.name for p in out.glob("*.csv")) == ["ablation.csv", "intervention_effects.csv", "knockout.csv", "ranking.csv", "transplant.csv"]
