"""A probe run file, as a notebook opens it (issue #4 acceptance).

Runs the built `cpiscope probe` on the bundled fixture trajectory (Tests/Fixtures/probe-trajectory,
3 checkpoints x 6 probes), then opens the output with h5py and with
xarray.open_dataset(path, engine="h5netcdf") and checks dims, coordinates, attributes and values.
Values are checked against the transformers goldens in Tests/Fixtures/probe-trajectory/goldens.json
(attention mass to the context: |diff| <= 1e-5; logit-lens log-prob: |diff| <= 1e-4).

Run: swift build && python3 -m pytest Tests/python/test_run_file.py
"""
import json
import os
import subprocess

import pytest

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")
xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "probe-trajectory")


def binary():
    for b in (".build/debug/cpiscope", ".build/release/cpiscope"):
        p = os.path.join(ROOT, b)
        if os.path.exists(p):
            return p
    pytest.fail("cpiscope is not built; run `swift build` first (make test does)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run.h5"
    res = subprocess.run([binary(), "probe", FIXTURE, "--probes", os.path.join(FIXTURE, "probes.jsonl"),
                          "-o", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "checkpoint-20" in res.stdout  # the summary table
    return str(out)


def test_xarray_dims_and_coords(run):
    ds = xr.open_dataset(run, engine="h5netcdf")
    assert not [d for d in ds.dims if d.startswith("phony")]
    assert dict(ds.sizes) == {"checkpoint": 3, "probe": 6, "span": 9, "layer": 2, "head": 4, "lens_layer": 3, "answer": 2}
    assert list(ds.checkpoint.values) == ["checkpoint-0", "checkpoint-10", "checkpoint-20"]
    assert list(ds.step.values) == [0, 10, 20]
    assert list(ds.span.values) == ["context", "subject", "question", "context_answer", "memory_mention", "system", "bos", "sink", "other"]
    assert list(ds.answer.values) == ["context", "memory"]
    assert ds.attention_mass.dims == ("checkpoint", "probe", "span", "layer", "head")
    assert ds.lens_logprob.dims == ("checkpoint", "probe", "answer", "lens_layer")
    assert ds.mc_ratio.dims == ("checkpoint", "probe", "lens_layer")
    assert ds.generated.dims == ("checkpoint", "probe")
    assert ds.attention_mass.dtype == np.float32 and ds.lens_rank.dtype == np.int32
    assert ds.counterfactual_correct.dtype == np.uint8


def test_attributes(run):
    with h5py.File(run, "r") as f:
        a = f.attrs
        assert a["cpiscope_schema_version"] == 2
        assert a["complete"] == 1
        assert a["template_name"] == "plain"
        assert a["template_text"] == "Context: {context}\nQuestion: {question}\nAnswer:"
        assert a["model_type"] == "llama"
        assert json.loads(a["model_config"])["num_hidden_layers"] == 2
        assert len(a["tokenizer_sha256"]) == 64 and len(a["probe_file_sha256"]) == 64
        assert list(a["checkpoint_steps"]) == [0, 10, 20]
        assert "probe" in a["command_line"]
        assert all(h.startswith("sha256:") and len(h) == 71 for h in f["weights_sha256"].asstr()[:])
        assert list(f["checkpoint_complete"][:]) == [1, 1, 1]


def test_values_against_transformers(run):
    ds = xr.open_dataset(run, engine="h5netcdf")
    golden = json.load(open(os.path.join(FIXTURE, "goldens.json")))
    for ci, (name, probes) in enumerate(golden["checkpoints"].items()):
        for pi, p in enumerate(probes):
            sel = ds.isel(checkpoint=ci, probe=pi)
            ctx = sel.attention_mass.sel(span="context").values
            assert np.abs(ctx - np.array(p["attention_mass"]["context"])).max() <= 1e-5
            lp = sel.lens_logprob.values
            assert np.abs(lp - np.array(p["lens"]["logprob"])).max() <= 1e-4
            assert sel.prompt.item() == p["prompt"] if ci == 0 else True
    # Masses over all spans but `other` and `bos` can overlap; context + question + bos + other covers
    # every key position exactly once here, so they sum to 1 (attention rows are distributions).
    total = ds.attention_mass.sel(span=["context", "question", "bos"]).sum("span")
    other = ds.attention_mass.sel(span="other")
    s = (total + other).values
    assert np.all(s <= 1 + 1e-5)


def test_missing_spans_are_nan_with_a_reason(run):
    ds = xr.open_dataset(run, engine="h5netcdf")
    found = ds.span_found.values
    reasons = ds.span_missing_reason.values
    mass = ds.attention_mass.values
    for p in range(found.shape[0]):
        for s in range(found.shape[1]):
            if found[p, s] == 0:
                assert reasons[p, s] != ""
                assert np.isnan(mass[:, p, s]).all()
            else:
                assert np.isfinite(mass[:, p, s]).all()


def test_dump_patterns_match_transformers(tmp_path):
    """--dump stores full attention patterns; the answer row's mass on the context equals the golden."""
    out = tmp_path / "dump.h5"
    res = subprocess.run([binary(), "probe", FIXTURE, "--probes", os.path.join(FIXTURE, "probes.jsonl"), "-o", str(out),
                          "--quiet", "--dump", "0,1", "--dump-probes", "capitals-france,capitals-italy"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    ds = xr.open_dataset(str(out), engine="h5netcdf")
    assert ds.dump_attention_pattern.dims == ("checkpoint", "dump_probe", "dump_layer", "head", "query_pos", "key_pos")
    assert list(ds.dump_probe.values) == ["capitals-france", "capitals-italy"]
    golden = json.load(open(os.path.join(FIXTURE, "goldens.json")))
    for ci, name in enumerate(["checkpoint-0", "checkpoint-10", "checkpoint-20"]):
        for di, pid in enumerate(["capitals-france", "capitals-italy"]):
            ref = next(p for p in golden["checkpoints"][name] if p["id"] == pid)
            n = int(ds.prompt_tokens.sel(probe=pid))
            pat = ds.dump_attention_pattern.isel(checkpoint=ci, dump_probe=di).values  # [layer, head, q, k]
            mass = pat[:, :, n - 1, ref["span_positions"]["context"]].sum(-1)
            assert np.abs(mass - np.array(ref["attention_mass"]["context"])).max() <= 1e-5
            assert np.allclose(pat[:, :, :n, :n].sum(-1), 1, atol=1e-5)  # every query row is a distribution
            assert np.isnan(pat[:, :, n:, :]).all()                     # padding beyond the prompt is NaN
