#!/usr/bin/env python3
"""PyTorch zip checkpoints (`pytorch_model.bin`), a tuned lens, and malicious/malformed pickles, for the
tests of cpiscope's restricted torch reader (Sources/Checkpoints/Torch*.swift, docs/torch-bin.md).

Everything lands in Tests/Fixtures/torch-bin/:

  gpt2-tied/        pytorch_model.bin of Tests/Fixtures/models/gpt2-tied: `lm_head.weight` and
                    `transformer.wte.weight` share one storage (tied), and `h.0.mlp.c_fc.weight` is saved
                    as a non-contiguous (transposed) view
  llama-sharded/    pytorch_model-0000N-of-0000M.bin + pytorch_model.bin.index.json of models/llama-gqa;
                    each layer's q/k/v projections are views at offsets into one fused storage
  llama-bf16/       pytorch_model.bin of models/llama-bf16 (BF16 storages)
  mixed/            a trajectory: checkpoint-0 as model.safetensors, checkpoint-10 as pytorch_model.bin
                    (probe-trajectory's checkpoints), with its tokenizer
  tuned-lens/       a tuned lens for probe-trajectory's model built with the `tuned-lens` package
                    (TunedLens.from_model, random translators, TunedLens.save: config.json + params.pt),
                    and reference.safetensors: for the ids in reference.json, `logits` [lens_layer, pos,
                    d_vocab] = lens(hidden_states[i], i) for i < L and the model's logits for i = L
  bad/              one file per refused input (see BAD below)

transformers 5 dropped `save_pretrained(safe_serialization=False)`; this script writes what transformers
4.x wrote there — `torch.save(shard_state_dict, path)` per shard, shards split by
`huggingface_hub.split_torch_state_dict_into_shards` with the `pytorch_model{suffix}.bin` pattern, and
the same index layout — and checks that transformers 5 `from_pretrained` loads each folder to logits
identical (torch.equal) to the safetensors original.

Rerun from the repository root (versions in Tools/requirements-goldens.txt; tuned-lens is installed with
`pip install --no-deps tuned-lens==0.2.0`, its other dependencies are not needed here):
    python3 Tools/goldens/make_torch_bin_fixtures.py
"""
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile
import zlib

import torch
import transformers
from huggingface_hub import split_torch_state_dict_into_shards
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "Tests", "Fixtures")
OUT = os.path.join(FIX, "torch-bin")
MODELS = os.path.join(FIX, "models")
TRAJ = os.path.join(FIX, "probe-trajectory")
IDS = [3, 17, 42, 5, 88, 1, 60, 9]


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def logits_of(folder, ids=IDS):
    m = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        return m(torch.tensor([ids])).logits[0]


def check_same_logits(original, converted):
    a, b = logits_of(original), logits_of(converted)
    assert torch.equal(a, b), f"{converted}: logits differ from {original} by {(a - b).abs().max()}"
    print(f"  {os.path.relpath(converted, FIX)}: transformers logits identical to the safetensors original")


def save_bin(state, folder, max_shard_size=None):
    """What transformers 4.x save_pretrained(safe_serialization=False) wrote."""
    if max_shard_size is None:
        torch.save(state, os.path.join(folder, "pytorch_model.bin"))
        return
    split = split_torch_state_dict_into_shards(state, filename_pattern="pytorch_model{suffix}.bin",
                                               max_shard_size=max_shard_size)
    for filename, names in split.filename_to_tensors.items():
        torch.save({n: state[n] for n in names}, os.path.join(folder, filename))
    index = {"metadata": {**split.metadata}, "weight_map": split.tensor_to_filename}
    with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)


def gpt2_tied():
    src, dst = os.path.join(MODELS, "gpt2-tied"), fresh(os.path.join(OUT, "gpt2-tied"))
    shutil.copy(os.path.join(src, "config.json"), dst)
    model = transformers.AutoModelForCausalLM.from_pretrained(src)
    state = model.state_dict()  # transformer.wte.weight and lm_head.weight: the same tensor
    assert state["lm_head.weight"].data_ptr() == state["transformer.wte.weight"].data_ptr()
    w = state["transformer.h.0.mlp.c_fc.weight"]
    state["transformer.h.0.mlp.c_fc.weight"] = w.t().contiguous().t()  # same values, column-major
    assert not state["transformer.h.0.mlp.c_fc.weight"].is_contiguous()
    save_bin(state, dst)
    check_same_logits(src, dst)


def llama_sharded():
    src, dst = os.path.join(MODELS, "llama-gqa"), fresh(os.path.join(OUT, "llama-sharded"))
    shutil.copy(os.path.join(src, "config.json"), dst)
    model = transformers.AutoModelForCausalLM.from_pretrained(src)
    state = dict(model.state_dict())
    for name in list(state):
        if name.endswith("self_attn.q_proj.weight"):
            p = name[: -len("q_proj.weight")]
            q, k, v = (state[p + s + "_proj.weight"] for s in "qkv")
            fused = torch.cat([q, k, v])
            state[p + "q_proj.weight"] = fused[: q.shape[0]]
            state[p + "k_proj.weight"] = fused[q.shape[0]: q.shape[0] + k.shape[0]]
            state[p + "v_proj.weight"] = fused[q.shape[0] + k.shape[0]:]
    save_bin(state, dst, max_shard_size="20KB")
    check_same_logits(src, dst)


def llama_bf16():
    src, dst = os.path.join(MODELS, "llama-bf16"), fresh(os.path.join(OUT, "llama-bf16"))
    shutil.copy(os.path.join(src, "config.json"), dst)
    model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
    state = model.state_dict()
    assert all(t.dtype == torch.bfloat16 for t in state.values())
    save_bin(state, dst)
    a = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16).state_dict()
    b = transformers.AutoModelForCausalLM.from_pretrained(dst, dtype=torch.bfloat16).state_dict()
    assert all(torch.equal(a[n], b[n]) for n in a)
    print("  llama-bf16: transformers loads identical BF16 weights")


def mixed():
    dst = fresh(os.path.join(OUT, "mixed"))
    for name in ["checkpoint-0", "checkpoint-10"]:
        os.makedirs(os.path.join(dst, name))
        shutil.copy(os.path.join(TRAJ, name, "config.json"), os.path.join(dst, name))
    shutil.copy(os.path.join(TRAJ, "checkpoint-0", "model.safetensors"), os.path.join(dst, "checkpoint-0"))
    model = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(TRAJ, "checkpoint-10"))
    save_bin(model.state_dict(), os.path.join(dst, "checkpoint-10"))
    for f in ["tokenizer.json", "tokenizer_config.json", "probes.jsonl"]:
        shutil.copy(os.path.join(TRAJ, f), dst)
    check_same_logits(os.path.join(TRAJ, "checkpoint-10"), os.path.join(dst, "checkpoint-10"))


def tuned_lens():
    from tuned_lens import TunedLens
    dst = fresh(os.path.join(OUT, "tuned-lens"))
    src = os.path.join(TRAJ, "checkpoint-20")
    model = transformers.AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager").eval()
    lens = TunedLens.from_model(model)
    lens.config.base_model_name_or_path = "../probe-trajectory/checkpoint-20"  # not this machine's path
    g = torch.Generator().manual_seed(20)
    with torch.no_grad():
        for t in lens.layer_translators:
            t.weight.copy_(0.3 * torch.randn(t.weight.shape, generator=g))
            t.bias.copy_(0.2 * torch.randn(t.bias.shape, generator=g))
    lens.save(dst)
    with torch.no_grad():
        out = model(torch.tensor([IDS]), output_hidden_states=True)
        hs = out.hidden_states
        L = model.config.num_hidden_layers
        rows = [lens(hs[i], i)[0] for i in range(L)] + [out.logits[0]]
    save_file({"logits": torch.stack(rows).contiguous()}, os.path.join(dst, "reference.safetensors"))
    with open(os.path.join(dst, "reference.json"), "w") as f:
        json.dump({"model": "probe-trajectory/checkpoint-20", "ids": IDS,
                   "logits": "[lens_layer, pos, d_vocab]: TunedLens(hidden_states[i], i) for i < L, model logits at i = L",
                   "tuned_lens": "0.2.0"}, f, indent=2)
    # The same lens with another layer count, for the mismatch error.
    bad = fresh(os.path.join(OUT, "tuned-lens-3-layers"))
    cfg = json.load(open(os.path.join(dst, "config.json")))
    cfg["num_hidden_layers"] = 3
    json.dump(cfg, open(os.path.join(bad, "config.json"), "w"))
    state = lens.layer_translators.state_dict()
    state.update({"2.weight": state["1.weight"].clone(), "2.bias": state["1.bias"].clone()})
    torch.save(state, os.path.join(bad, "params.pt"))
    print("  tuned-lens: reference logits from tuned_lens.TunedLens")


# MARK: refused inputs

def zip_archive(path, records, archive="archive", method=zipfile.ZIP_STORED, names=None):
    """A torch-like zip: <archive>/<record> for each record (bytes), stored unless `method` says otherwise."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in records.items():
            z.writestr(zipfile.ZipInfo((names or {}).get(name, f"{archive}/{name}")), data, compress_type=method)


def tensor_pickle(storage_key="0", numel=4, size=(4,), stride=(1,), storage_type=b"FloatStorage"):
    """A protocol-2 pickle of {'w': tensor} as torch.save writes it, assembled opcode by opcode."""
    def ints(xs):
        return b"(" + b"".join(b"K" + bytes([x]) for x in xs) + b"t"
    return (b"\x80\x02" + b"ccollections\nOrderedDict\n)R"                 # OrderedDict()
            + b"X\x01\x00\x00\x00w"                                       # key 'w'
            + b"ctorch._utils\n_rebuild_tensor_v2\n"
            + b"((X\x07\x00\x00\x00storage" + b"ctorch\n" + storage_type + b"\n"
            + b"X" + struct.pack("<I", len(storage_key)) + storage_key.encode()
            + b"X\x03\x00\x00\x00cpu" + b"K" + bytes([numel]) + b"tQ"       # persistent id
            + b"K\x00" + ints(size) + ints(stride) + b"\x89"               # offset, size, stride, False
            + b"ccollections\nOrderedDict\n)R" + b"tR"                     # hooks; REDUCE
            + b"s.")                                                       # SETITEM, STOP


def good_records(pkl, storages=None):
    recs = {"data.pkl": pkl, "byteorder": b"little", "version": b"3\n"}
    for k, v in (storages or {"0": struct.pack("<4f", 1, 2, 3, 4)}).items():
        recs[f"data/{k}"] = v
    return recs


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class EvilCallable:
    def __reduce__(self):
        return (eval, ("__import__('os').system('echo pwned')",))


BAD = {
    # name: (what, how)
    "posix-system.bin": "a pickle whose value's __reduce__ is os.system (GLOBAL posix.system)",
    "reduce-callable.bin": "__reduce__ of an arbitrary callable (builtins.eval, spelled __builtin__.eval in protocol 2)",
    "storage-call.bin": "REDUCE that calls an allowed name which is not a constructor (torch.FloatStorage())",
    "opcode-inst.bin": "an opcode outside the accepted set (INST)",
    "persid-past-storages.bin": "a persistent id naming storage '7' of an archive that holds only data/0",
    "storage-short.bin": "a tensor of 10 elements over a storage of 4",
    "zip-bomb.bin": "data/0 deflate-compressed: 64 MiB of zeros in 64 KiB",
    "path-traversal.bin": "an entry named ../../../tmp/evil",
    "legacy.bin": "the legacy (pre-1.6, non-zip) torch format",
    "not-a-dict.bin": "a pickle of a list of tensors, not a state dict",
}


def bad():
    d = fresh(os.path.join(OUT, "bad"))
    torch.save({"w": Evil()}, os.path.join(d, "posix-system.bin"))
    torch.save({"w": EvilCallable()}, os.path.join(d, "reduce-callable.bin"))
    zip_archive(os.path.join(d, "storage-call.bin"),
                good_records(b"\x80\x02}X\x01\x00\x00\x00wctorch\nFloatStorage\n)Rs."))
    zip_archive(os.path.join(d, "opcode-inst.bin"), good_records(b"\x80\x02}X\x01\x00\x00\x00w(icollections\nOrderedDict\ns."))
    zip_archive(os.path.join(d, "persid-past-storages.bin"), good_records(tensor_pickle(storage_key="7")))
    zip_archive(os.path.join(d, "storage-short.bin"), good_records(tensor_pickle(size=(10,))))
    recs = good_records(tensor_pickle(numel=255, size=(4,)), {"0": bytes(64 << 20)})
    with zipfile.ZipFile(os.path.join(d, "zip-bomb.bin"), "w") as z:
        for name, data in recs.items():
            z.writestr(f"archive/{name}", data,
                       compress_type=zipfile.ZIP_DEFLATED if name.startswith("data/") else zipfile.ZIP_STORED)
    zip_archive(os.path.join(d, "path-traversal.bin"), good_records(tensor_pickle()),
                names={"data/0": "../../../tmp/evil"})
    torch.save({"w": torch.ones(4)}, os.path.join(d, "legacy.bin"), _use_new_zipfile_serialization=False)
    torch.save([torch.ones(4)], os.path.join(d, "not-a-dict.bin"))
    # The good twin of the crafted files: torch itself loads it (weights_only) to {'w': [1, 2, 3, 4]}.
    zip_archive(os.path.join(d, "good-crafted.bin"), good_records(tensor_pickle()))
    loaded = torch.load(os.path.join(d, "good-crafted.bin"), weights_only=True)
    assert torch.equal(loaded["w"], torch.tensor([1.0, 2, 3, 4])), loaded
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("# Refused torch checkpoints\n\nMade by Tools/goldens/make_torch_bin_fixtures.py; each is refused "
                "by cpiscope's reader with a specific error (Tests/CheckpointsTests/TorchReaderTests.swift).\n"
                "Never load them with `torch.load(..., weights_only=False)`.\n\n")
        f.write("| file | what |\n|---|---|\n")
        for name, what in BAD.items():
            f.write(f"| {name} | {what} |\n")
        f.write("| good-crafted.bin | the crafted layout done right: {'w': tensor([1., 2., 3., 4.])} |\n")
    print(f"  bad/: {len(BAD)} refused inputs")


def fuzz_seeds():
    d = fresh(os.path.join(FIX, "fuzz-corpus", "torch-zip"))
    for name in ["good-crafted.bin", "storage-short.bin", "opcode-inst.bin", "persid-past-storages.bin"]:
        shutil.copy(os.path.join(OUT, "bad", name), os.path.join(d, "seed-" + name.replace(".bin", "")))
    shutil.copy(os.path.join(OUT, "tuned-lens", "params.pt"), os.path.join(d, "seed-tuned-lens-params"))
    small = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.arange(6.0).reshape(2, 3).t(),
             "c": torch.ones(3, dtype=torch.float16), "d": torch.ones(2, dtype=torch.bfloat16)}
    small["e"] = small["a"][1]
    torch.save(small, os.path.join(d, "seed-views"))


if __name__ == "__main__":
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    gpt2_tied()
    llama_sharded()
    llama_bf16()
    mixed()
    tuned_lens()
    bad()
    fuzz_seeds()
