"""`cpiscope attribute` files as notebooks read them, end to end through the built binary (fixture
trajectory: 3 checkpoints × 6 probes, 2 layers × 4 heads): xarray opens the file with named dimensions and
coordinates (no phony_dim_*), the variables have the documented dimensions, the per-span sums add up to the
head's total (tolerance 1e-4 relative: float32 sums in another order), a checkpoint patched with itself
has estimates of exactly 0, and `cpiscope report` writes its sections and CSVs.

    swift build && python3 -m pytest Tests/python/test_cli_attribution.py
"""

import csv
import io

import pytest

from cli import FIXTURE, ok, needs_binary

np = pytest.importorskip("numpy")
h5py = pytest.importorskip("h5py")
xr = pytest.importorskip("xarray")

pytestmark = needs_binary


@pytest.fixture(scope="module")
def atp(tmp_path_factory):
    d = tmp_path_factory.mktemp("atp")
    f = d / "atp.h5"
    ok("attribute", FIXTURE, "--probes", FIXTURE / "probes.jsonl", "--components", "heads,mlp,resid",
       "--baseline", "checkpoint:checkpoint-0", "--verify-top", "3", "-o", f, "--force", "--quiet")
    return d, f


def test_xarray_named_dimensions(atp):
    _, f = atp
    ds = xr.open_dataset(f, engine="h5netcdf")
    assert not any(str(d).startswith("phony_dim") for d in ds.dims)
    assert ds["atp_head"].dims == ("checkpoint", "probe", "layer", "head")
    assert ds["atp_head_by_span"].dims == ("checkpoint", "probe", "layer", "head", "attribution_span")
    assert ds["atp_mlp"].dims == ("checkpoint", "probe", "layer") and ds["atp_resid"].dims == ("checkpoint", "probe", "layer")
    assert ds["verified_effect"].dims == ("checkpoint", "rank", "probe")
    assert list(ds["attribution_span"].values.astype(str)) == ["context", "subject", "question", "other"]
    assert ds.sizes["checkpoint"] == 3 and ds.sizes["probe"] == 6 and ds.sizes["head"] == 4
    assert list(ds["step"].values) == [0, 10, 20]
    # Against itself, checkpoint-0 patches nothing: every estimate is exactly 0 there.
    assert float(abs(ds["atp_head"].sel(checkpoint="checkpoint-0")).max()) == 0.0
    assert np.isfinite(ds["atp_head"].sel(checkpoint="checkpoint-20").values).all()


def test_span_sums_add_up(atp):
    _, f = atp
    with h5py.File(f, "r") as h:
        total, by = h["atp_head"][()].astype(np.float64), h["atp_head_by_span"][()].astype(np.float64)
    # In the fixture's prompts the subject lies inside the question and context and question are disjoint, so
    # context + question + other counts every prompt position exactly once: it must equal the total.
    s = by[..., 0] + by[..., 2] + by[..., 3]
    worst = np.nanmax(np.abs(s - total))
    assert worst <= 1e-4 * max(1.0, np.nanmax(np.abs(total))), f"max |context + question + other - total| = {worst}"


def test_report_files(atp):
    d, f = atp
    out = d / "report"
    ok("report", f, "-o", out)
    html = (out / "index.html").read_text()
    for section in ["atp-headline", "atp-heads", "atp-change", "atp-verify"]:
        assert f'id="{section}"' in html
    rows = list(csv.DictReader(io.StringIO((out / "atp_components.csv").read_text())))
    assert {r["component"] for r in rows} >= {"L0H0", "L1H3", "mlp0", "mlp1"}
    verified = list(csv.DictReader(io.StringIO((out / "atp_verified.csv").read_text())))
    assert len(verified) == 3 * 3 * 6
