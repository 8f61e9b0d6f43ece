"""Checks that a cpiscope HDF5 file opens as notebooks open it: h5py.File(path) and
xarray.open_dataset(path, engine="h5netcdf"), with named dimensions (no phony_dim_*),
coordinate values, decoded strings and attributes.

The file is the demo file written by the Swift test HDF5StoreTests/PythonLayoutTests
(Tests/HDF5StoreTests/TestSupport.swift, `Demo`), whose values are recomputed here from the same
formulas. Run:

    swift test --filter PythonLayoutTests                 # writes a temp file and runs this
    CPISCOPE_WRITE_DEMO_H5=/tmp/demo.h5 swift test --filter PythonLayoutTests
    CPISCOPE_H5=/tmp/demo.h5 python3 -m pytest Tests/python/hdf5_layout_checks.py

The name does not start with test_ on purpose: `pytest Tests/python` has no file to check here, so it
does not collect (and skip) this module; the Swift test runs it with one.

Needs h5py, numpy, xarray, h5netcdf (versions used: h5py 3.16.0, xarray 2026.9.0, h5netcdf 1.8.2).
Floats are compared exactly (the writer stores float32 values computed by the same formula)
except the attention pattern, whose float32 arithmetic may round differently: tolerance 1e-6.
"""

import os

import pytest

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")
xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

PATH = os.environ.get("CPISCOPE_H5")
if not PATH:
    pytest.skip(
        "set CPISCOPE_H5 to a demo file (swift test --filter PythonLayoutTests writes one)",
        allow_module_level=True,
    )

# The demo's content (keep in sync with `Demo` in Tests/HDF5StoreTests/TestSupport.swift).
CHECKPOINTS = ["base", "checkpoint-500", "checkpoint-1000"]
STEPS = [0, 500, 1000]
PROBES = ["p0-capital", "p1-ünïcødé", "p2-日本語"]
LAYERS = [0, 1, 2, 3]
HEADS = [0, 1]
POSITIONS = [0, 1, 2, 3, 4]
TOKEN_COUNT = [3, 4, 5]
DIMS = {"checkpoint": 3, "probe": 3, "layer": 4, "head": 2, "query_pos": 5, "key_pos": 5}


def margin():
    c, p, l = np.meshgrid(range(3), range(3), range(4), indexing="ij")
    return (c * 100 + p * 10 + l).astype(np.float32) + np.float32(0.25)


def pattern_slab0():
    h, q, k = np.meshgrid(range(2), range(5), range(5), indexing="ij")
    return h.astype(np.float32) + q.astype(np.float32) * np.float32(0.1) + k.astype(np.float32) * np.float32(0.01)


@pytest.fixture(scope="module")
def ds():
    with xr.open_dataset(PATH, engine="h5netcdf") as d:
        yield d.load()


@pytest.fixture(scope="module")
def dumps():
    with xr.open_dataset(PATH, engine="h5netcdf", group="dumps") as d:
        yield d.load()


# --- h5py -------------------------------------------------------------------------------


def test_h5py_opens_and_strings_are_utf8():
    with h5py.File(PATH, "r") as f:
        assert set(f.keys()) >= {"checkpoint", "probe", "step", "margin", "answer_text", "dumps"}
        info = h5py.check_string_dtype(f["probe"].dtype)
        assert info is not None and info.encoding == "utf-8" and info.length is None  # variable-length UTF-8
        assert f["probe"].asstr()[...].tolist() == PROBES
        assert [b.decode("utf-8") for b in f["probe"][...]] == PROBES  # raw access gives UTF-8 bytes
        assert f["answer_text"].asstr()[1, 2] == "ans-1-2-é"


def test_h5py_dimension_scales_and_attributes():
    with h5py.File(PATH, "r") as f:
        assert h5py.h5ds.is_scale(f["checkpoint"].id)
        assert f["checkpoint"].attrs["CLASS"] == b"DIMENSION_SCALE"
        assert [f["margin"].dims[i][0].name for i in range(3)] == ["/checkpoint", "/probe", "/layer"]
        assert f["dumps/attention_pattern"].dims[3][0].name == "/key_pos"
        ids = sorted(int(f[d].attrs["_Netcdf4Dimid"]) for d in DIMS)
        assert ids == list(range(len(DIMS)))  # netCDF dimension ids 0..n-1, unique
        assert f.attrs["model"] == "pythia-14m"  # vlen UTF-8 attributes come back as str
        assert f.attrs["probe_sets"].tolist() == ["capitals", "ünï"]
        assert f.attrs["seed"] == 1234 and f.attrs["seed"].dtype == np.int64
        assert f["margin"].attrs["units"] == "logit"


def test_h5py_values_and_fill():
    with h5py.File(PATH, "r") as f:
        np.testing.assert_array_equal(f["margin"][...], margin())
        a = f["dumps/attention_pattern"][...]
        np.testing.assert_allclose(a[0], pattern_slab0(), rtol=0, atol=1e-6)
        assert np.isnan(a[1:]).all()  # unwritten checkpoints hold the NaN fill
        assert f["correct"].fillvalue == 255
        assert np.isnan(f["margin"].fillvalue)


# --- xarray + h5netcdf ------------------------------------------------------------------


def test_xarray_dims_are_named_no_phony(ds):
    assert dict(ds.sizes) == DIMS
    assert not [d for d in ds.dims if str(d).startswith("phony_dim")]


def test_xarray_coordinates(ds):
    assert set(ds.coords) == set(DIMS) | {"step"}
    assert ds["checkpoint"].values.tolist() == CHECKPOINTS
    assert ds["probe"].values.tolist() == PROBES
    # decoded to str (numpy.str_ in a '<U' array, or str in an object array), never bytes
    assert ds["probe"].dtype.kind in "UO" and all(isinstance(s, str) for s in ds["probe"].values)
    assert ds["layer"].values.tolist() == LAYERS
    assert ds["head"].values.tolist() == HEADS
    assert ds["step"].dims == ("checkpoint",)
    assert ds["step"].values.tolist() == STEPS
    assert "coordinates" not in ds.attrs  # consumed by CF decoding


def test_xarray_variables(ds):
    # in the order written (link creation order is tracked)
    assert list(ds.data_vars) == ["margin", "top_token", "answer_text", "correct", "token_count"]
    assert ds["margin"].dims == ("checkpoint", "probe", "layer")
    assert ds["margin"].dtype == np.float32
    np.testing.assert_array_equal(ds["margin"].values, margin())
    assert float(ds["margin"].sel(checkpoint="checkpoint-500", probe="p2-日本語", layer=3)) == 123.25
    assert ds["margin"].attrs == {"units": "logit", "long_name": "logit(context answer) - logit(memory answer)"}
    assert ds["top_token"].dtype == np.int32
    assert ds["top_token"].values.tolist() == [[c * 10 + p for p in range(3)] for c in range(3)]
    text = ds["answer_text"]
    assert text.dims == ("checkpoint", "probe")
    assert text.values.tolist() == [[f"ans-{c}-{p}-é" for p in range(3)] for c in range(3)]
    assert text.dtype.kind in "UO" and all(isinstance(s, str) for s in text.values.ravel())
    assert ds["correct"].values.tolist() == [[(c + p) % 2 for p in range(3)] for c in range(3)]
    assert ds["token_count"].dims == ("probe",)
    assert ds["token_count"].values.tolist() == TOKEN_COUNT


def test_xarray_attributes(ds):
    # in the order written (attribute creation order is tracked)
    assert list(ds.attrs) == ["cpiscope_version", "model", "seed", "temperature", "probe_sets",
                              "layers_recorded", "thresholds"]
    assert ds.attrs["cpiscope_version"] == "0.0.0-test"
    assert ds.attrs["model"] == "pythia-14m"
    assert ds.attrs["seed"] == 1234
    assert ds.attrs["temperature"] == 0.5
    assert list(ds.attrs["probe_sets"]) == ["capitals", "ünï"]
    assert list(ds.attrs["layers_recorded"]) == [0, 2]
    assert list(ds.attrs["thresholds"]) == [0.5, 1.5]
    assert not {"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", "_Netcdf4Dimid"} & set(ds.attrs)


def test_xarray_group_variable_resolves_root_dims(dumps):
    a = dumps["attention_pattern"]
    assert a.dims == ("checkpoint", "head", "query_pos", "key_pos")
    assert not [d for d in dumps.dims if str(d).startswith("phony_dim")]
    np.testing.assert_allclose(a.values[0], pattern_slab0(), rtol=0, atol=1e-6)
    assert np.isnan(a.values[1:]).all()


def test_h5netcdf_sees_dimensions():
    import h5netcdf

    with h5netcdf.File(PATH, "r") as f:
        assert {k: len(v) for k, v in f.dimensions.items()} == DIMS
        assert f.variables["margin"].dimensions == ("checkpoint", "probe", "layer")
        assert f["dumps"].variables["attention_pattern"].dimensions == ("checkpoint", "head", "query_pos", "key_pos")


def test_xarray_datatree_if_available():
    if not hasattr(xr, "open_datatree"):
        pytest.skip("xarray without open_datatree")
    tree = xr.open_datatree(PATH, engine="h5netcdf")
    try:
        assert tree["dumps/attention_pattern"].dims == ("checkpoint", "head", "query_pos", "key_pos")
        # inherited coordinates make the dump indexable by checkpoint label
        assert tree["dumps"].to_dataset().sel(checkpoint="base")["attention_pattern"].shape == (2, 5, 5)
    finally:
        tree.close()
