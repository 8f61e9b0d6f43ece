"""`cpiscope demo` end to end through the built binary, checked against the transformers goldens of the
bundled trajectory (Demo/goldens, written by Tools/train_demo/goldens.py with transformers 5.24.0 and
peft 0.21.2, fp32, eager attention).

For every checkpoint of both runs (Demo/full-ft: full finetuning; Demo/lora: PEFT adapters over
Demo/base), over all 48 held-out probes (Probes/demo_heldout.jsonl):
  counterfactual / parametric correctness per probe   identical (so counterfactual accuracy is identical)
  greedy continuation                                  identical up to the tool's stop string
  M_C at the model's output                            max |Δ| ≤ 1e-4
  mean context attention per layer                    max |Δ| ≤ 1e-5
and for the two golden probes, from transformers' full attention patterns and last-position logits:
  attention mass to the context span and to BOS, per layer and head     max |Δ| ≤ 1e-5
  log-probability of each answer's first token at the output (lens)     max |Δ| ≤ 1e-4
(The forward pass's full attention patterns and logits at every checkpoint are compared directly in
Tests/ProbeRunTests/DemoGoldenTests.swift.)

    swift build && python3 -m pytest Tests/python/test_demo.py
"""

import json
import struct
import subprocess
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".build" / "debug" / "cpiscope"
DEMO = ROOT / "Demo"
RUNS = ["full-ft", "lora"]

pytestmark = [
    pytest.mark.skipif(not BINARY.exists(), reason="build cpiscope first: swift build"),
    pytest.mark.skipif(not (DEMO / "goldens").exists(), reason="Demo/ is not in this checkout"),
]


def read_safetensors(path):
    """A minimal reader of the safetensors format (8-byte header length, JSON header, raw data)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def strings(ds):
    return [v.decode() if isinstance(v, bytes) else v for v in ds[...].ravel()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    r = subprocess.run([str(BINARY), "demo", "--output", str(out), "--quiet"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"cpiscope demo failed:\n{r.stdout}\n{r.stderr}"
    return out, r.stdout


@pytest.fixture(scope="module")
def goldens():
    return {run: json.loads((DEMO / "goldens" / f"{run}.json").read_text()) for run in RUNS}


def test_demo_prints_where_outputs_are_and_the_headline(demo):
    out, stdout = demo
    for name in ["full-ft.h5", "lora.h5", "report/index.html", "report/report.md"]:
        assert (out / name).is_file(), f"demo did not write {name}"
    assert f"outputs in {out}" in stdout
    head = stdout.split("== headline (full-ft) ==", 1)
    assert len(head) == 2, stdout
    # The peak step, the drop with its interval, and the heads and layers that moved most.
    assert "Counterfactual accuracy: first 0.812, peak 0.917 at checkpoint-50 (step 50), final 0.500" in head[1]
    assert "drop peak→final 0.417 [" in head[1]
    assert "top moving heads (context attention" in head[1]
    assert "top moving layers:" in head[1]
    assert "== full-ft vs lora ==" in stdout


@pytest.mark.parametrize("run", RUNS)
def test_demo_numbers_match_transformers(demo, goldens, run):
    out, _ = demo
    gold = goldens[run]
    with h5py.File(out / f"{run}.h5", "r") as f:
        assert f.attrs["complete"] == 1
        assert int(f.attrs["max_new_tokens"]) == gold["max_new_tokens"]
        steps = [c["step"] for c in gold["checkpoints"]]
        assert f["step"][...].tolist() == steps
        n_probes = gold["n_probes"]
        assert len(f["probe"]) == n_probes
        spans = strings(f["span"])
        ctx = spans.index("context")
        stops = [s for s in strings(f.attrs["stop_strings"]) if s] if "stop_strings" in f.attrs else []
        cf_all = f["counterfactual_correct"][...]
        mem_all = f["parametric_correct"][...]
        mc_all = f["mc_ratio"][...]
        mass_all = f["attention_mass"][...]
        generated = f["generated"][...]
        for i, ref in enumerate(gold["checkpoints"]):
            where = f"{run} step {ref['step']}"
            cf = cf_all[i].astype(bool)
            assert cf.tolist() == ref["cf_correct"], f"{where}: counterfactual correctness differs"
            assert mem_all[i].astype(bool).tolist() == ref["mem_correct"], f"{where}: parametric correctness differs"
            assert cf.sum() / n_probes == ref["cf_acc"], f"{where}: counterfactual accuracy {cf.mean()} vs {ref['cf_acc']}"
            d = np.abs(mc_all[i, :, -1].astype(np.float64) - np.array(ref["M_C"])).max()
            assert d <= 1e-4, f"{where}: M_C max |Δ| = {d:.3g} > 1e-4"
            per_layer = mass_all[i, :, ctx, :, :].astype(np.float64).mean(axis=2).mean(axis=0)
            d = np.abs(per_layer - np.array(ref["ctx_attn_per_layer"])).max()
            assert d <= 1e-5, f"{where}: mean context attention per layer max |Δ| = {d:.3g} > 1e-5"
            for j, text in enumerate(ref["generated_text"]):
                mine = generated[i, j].decode() if isinstance(generated[i, j], bytes) else generated[i, j]
                assert text.startswith(mine), f"{where} probe {j}: generated {mine!r}, transformers {text!r}"
                if mine != text:  # cut by a stop string, which must be what follows
                    rest = text[len(mine):]
                    assert any(rest.startswith(s) for s in stops), \
                        f"{where} probe {j}: {mine!r} is shorter than transformers' {text!r} without a stop string"


@pytest.mark.parametrize("run", RUNS)
def test_golden_probes_span_attention_and_lens_match_transformers(demo, goldens, run):
    tokenizers = pytest.importorskip("tokenizers")
    out, _ = demo
    gold = goldens[run]
    tok = tokenizers.Tokenizer.from_file(str(DEMO / "base" / "tokenizer.json"))
    probes = [json.loads(line) for line in (ROOT / gold["probes"]).read_text().splitlines() if line.strip()]
    with h5py.File(out / f"{run}.h5", "r") as f:
        spans = strings(f["span"])
        probe_ids = strings(f["probe"])
        answers = strings(f["answer"])
        for i, ref in enumerate(gold["checkpoints"]):
            g = read_safetensors(DEMO / "goldens" / run / f"checkpoint-{ref['step']}.safetensors")
            for k, pid in enumerate(gold["golden_probe_ids"]):
                where = f"{run} step {ref['step']} {pid}"
                p = probe_ids.index(pid)
                ids, att, logits = g[f"probe{k}.input_ids"], g[f"probe{k}.attention"], g[f"probe{k}.logits"]
                assert int(f["prompt_tokens"][p]) == len(ids), f"{where}: prompt length differs"
                last = att[:, :, -1, :].astype(np.float64)  # [layer, head, key]
                mask = np.array(ref["ctx_token_mask"][k], dtype=np.float64)
                want = {"context": (last * mask).sum(-1), "bos": last[:, :, 0]}
                for span, expected in want.items():
                    mine = f["attention_mass"][i, p, spans.index(span)].astype(np.float64)
                    d = np.abs(mine - expected).max()
                    assert d <= 1e-5, f"{where}: {span} attention mass max |Δ| = {d:.3g} > 1e-5"
                z = logits.astype(np.float64)
                logp = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
                probe = probes[p]
                for which, text in [("context", probe["answer"]), ("memory", probe["memory_answer"])]:
                    first = tok.encode(" " + text, add_special_tokens=False).ids[0]
                    mine = float(f["lens_logprob"][i, p, answers.index(which), -1])
                    d = abs(mine - logp[first])
                    assert d <= 1e-4, f"{where}: {which} answer log-prob {mine} vs {logp[first]} (|Δ| = {d:.3g} > 1e-4)"


def test_demo_scores_its_own_finetuning_data(demo):
    """The data side of the demo scores the trajectory's own IFT data (Demo/ift-data.jsonl, written by
    Tools/train_demo/ift_data.py): nothing skipped, categories C, C+S and S, and at the final checkpoint each
    category's mean loss on the sequence it was trained on (C and C+S with their context, S without) is
    below 2 nats per response token (the model learned its data; checkpoint 0 is 7-10 nats)."""
    out, stdout = demo
    assert "the finetuning data's loss by category" in stdout
    with h5py.File(out / "criticality.h5", "r") as f:
        assert int(np.sum(f["skipped"][...])) == 0, strings(f["skip_reason"])
        category = strings(f["category"])
        assert set(category) == {"C", "C+S", "S"}
        assert f.attrs["category_field"] in ("category", b"category")
        with_ctx, without_ctx = f["nll_with_context"][-1], f["nll_without_context"][-1]
        first_with, first_without = f["nll_with_context"][0], f["nll_without_context"][0]
    for c in ["C", "C+S", "S"]:
        idx = [i for i, x in enumerate(category) if x == c]
        trained, start = (without_ctx, first_without) if c == "S" else (with_ctx, first_with)
        final = float(np.mean(trained[idx]))
        assert final < 2.0, f"category {c}: final-checkpoint loss {final:.3f} nats/token on its own training data"
        assert float(np.mean(start[idx])) > final, f"category {c}: the loss did not fall over training"
