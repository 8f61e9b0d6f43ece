#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets under Tests/Fixtures/fuzz-corpus/<target>/.

Rerun (from the package root, with the versions pinned in Tools/requirements-fuzz.txt):

    pip install -r Tools/requirements-fuzz.txt
    python3 Tools/make_fuzz_seeds.py

Seeds come from the committed fixtures (Tests/Fixtures/**): small safetensors files and the byte
images of Tests/Fixtures/safetensors/validation_corpus.json, every config.json, the fixture
tokenizer.json (+ tokenizer_config.json), the probe files and templates. Added to them, because the
fixtures hold one tokenizer pipeline only: a few tiny tokenizers trained here with Python `tokenizers`
(one per pipeline family: ByteLevel, Metaspace + byte fallback, NFKC/Lowercase + Split/Digits/
Punctuation, Replace/Prepend + TemplateProcessing), safetensors images of every dtype written with
`safetensors.numpy`, and adapter_config.json files written by `peft.LoraConfig.save_pretrained`.

Seeds are kept small (libFuzzer's -max_len follows the largest seed): each is under 20 KB.
Regression inputs (files named `regress-*`, found by the fuzzer) are never touched by this script.
CI never runs it; its outputs are committed.
"""
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIX, "fuzz-corpus")
MAX_SEED = 20_000


def reset(target):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if not name.startswith("regress-"):
            os.remove(os.path.join(d, name))
    return d


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    assert len(data) <= MAX_SEED, f"{target}/{name} is {len(data)} bytes"
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def read(*parts):
    with open(os.path.join(FIX, *parts), "rb") as f:
        return f.read()


def safetensors_seeds():
    reset("safetensors")
    put("safetensors", "decode.safetensors", read("safetensors", "decode.safetensors"))
    for name in sorted(os.listdir(os.path.join(FIX, "safetensors", "sharded"))):
        if name.endswith(".safetensors"):
            put("safetensors", "sharded-" + name, read("safetensors", "sharded", name))
    corpus = json.loads(read("safetensors", "validation_corpus.json"))
    for case in corpus["cases"]:
        data = bytes.fromhex(case["hex"])
        if len(data) <= MAX_SEED:
            put("safetensors", "case-" + case["name"], data)
    from safetensors.numpy import save
    tensors = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f16": np.array([1.5, -2.0, 65504.0], dtype=np.float16),
        "f64": np.array([[1e-300, 3.0]], dtype=np.float64),
        "i8": np.array([-1, 2], dtype=np.int8),
        "u8": np.array([255], dtype=np.uint8),
        "i64": np.array([1 << 40], dtype=np.int64),
        "b": np.array([True, False]),
        "scalar": np.array(7.0, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    put("safetensors", "dtypes.safetensors", save(tensors, metadata={"format": "np"}))


def config_seeds():
    reset("config")
    seen = set()
    for dirpath, _, files in sorted(os.walk(FIX)):
        if "fuzz-corpus" in dirpath:
            continue
        for f in files:
            if f == "config.json":
                data = read(os.path.relpath(os.path.join(dirpath, f), FIX))
                h = hashlib.sha256(data).hexdigest()[:12]
                if h not in seen:
                    seen.add(h)
                    put("config", f"config-{h}.json", data)


def tokenizer_seeds():
    reset("tokenizer")
    tok = read("probe-trajectory", "tokenizer.json")
    cfg = read("probe-trajectory", "tokenizer_config.json")
    put("tokenizer", "fixture-tokenizer.json", tok)
    put("tokenizer", "fixture-with-config", tok + b"\0" + cfg)

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers, Regex
    text = [
        "Paris is the capital of France. Marseille moved in 2031!",
        "Ünïcödé façade naïve — 日本語 テキスト 🇫🇷 ok",
        "The quick brown fox jumps over 1234 lazy dogs; ok? yes: no.",
    ] * 20
    specials = ["<s>", "</s>", "<unk>", "<|endoftext|>"]

    def train(name, build, vocab_size=120):
        t = build()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
                                      if isinstance(t.pre_tokenizer, pre_tokenizers.ByteLevel) else [])
        t.train_from_iterator(text, trainer)
        data = t.to_str().encode()
        put("tokenizer", name, data)

    def bytelevel():
        t = Tokenizer(models.BPE())
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        t.decoder = decoders.ByteLevel()
        t.post_processor = processors.ByteLevel(trim_offsets=True)
        return t
    train("bytelevel.json", bytelevel, vocab_size=300)

    def metaspace():
        t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                       decoders.Strip(" ", 1, 0)])
        t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                         special_tokens=[("<s>", 0)])
        return t
    train("metaspace-bytefallback.json", metaspace)

    def split_nfkc():
        t = Tokenizer(models.BPE(unk_token="<unk>"))
        t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()])
        t.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"), behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Punctuation(),
            pre_tokenizers.WhitespaceSplit()])
        return t
    train("split-nfkc.json", split_nfkc)

    def metaspace_pre():
        t = Tokenizer(models.BPE(unk_token="<unk>"))
        t.normalizer = normalizers.NFD()
        t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B </s>",
                                                         special_tokens=[("<s>", 0), ("</s>", 1)])
        return t
    train("metaspace-template.json", metaspace_pre)


def encoder_seeds():
    reset("encoder")
    # First byte: tokenizer index (low bits) and add-special-tokens (0x80).
    lines = read("probe-trajectory", "probes.jsonl").decode().splitlines()
    for i, line in enumerate(lines[:3]):
        p = json.loads(line)
        put("encoder", f"probe-{i}", bytes([i | 0x80]) + f"Context: {p['context']}\nQuestion: {p['question']}\nAnswer:".encode())
    put("encoder", "unicode", b"\x01" + "Ünïcödé 𝔘𝔫𝔦 🇫🇷👩‍👩‍👧 日本語 ﬁ Å \u0301x\u200d".encode())
    put("encoder", "specials", b"\x80<|endoftext|><s></s><unk>  \t\n\r\n")
    put("encoder", "spaces", b"\x00" + b"     a  b   c\n\n\n   ")


def probe_seeds():
    reset("probes")
    for name in sorted(os.listdir(os.path.join(FIX, "probes"))):
        if name.endswith((".json", ".jsonl")):
            put("probes", name, read("probes", name))
    put("probes", "trajectory-probes.jsonl", read("probe-trajectory", "probes.jsonl"))


def template_seeds():
    reset("template")
    for name in sorted(os.listdir(os.path.join(FIX, "probes"))):
        if name.endswith(".txt"):
            put("template", name, read("probes", name))
    put("template", "plain.txt", "Context: {context}\nQuestion: {question}\nAnswer:")
    put("template", "tulu.txt", "<|user|>\nBackground: {context} Question: {question}\n<|assistant|>\n")


def adapter_seeds():
    reset("adapter")
    from peft import LoraConfig
    configs = {
        "llama-qv": LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
        "gpt2-fan-in-fan-out": LoraConfig(r=2, lora_alpha=16, target_modules=["c_attn"], fan_in_fan_out=True,
                                          task_type="CAUSAL_LM"),
        "patterns": LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj"],
                               rank_pattern={"q_proj": 4}, alpha_pattern={"k_proj": 2},
                               layers_to_transform=[0, 1], layers_pattern="layers", use_rslora=True,
                               task_type="CAUSAL_LM"),
        "regex-target": LoraConfig(r=2, lora_alpha=4, target_modules=r".*\.(q_proj|k_proj)$", task_type="CAUSAL_LM"),
    }
    for name, c in configs.items():
        c.base_model_name_or_path = "base"
        with tempfile.TemporaryDirectory() as d:
            c.save_pretrained(d)
            with open(os.path.join(d, "adapter_config.json"), "rb") as f:
                put("adapter", name + ".json", f.read())


if __name__ == "__main__":
    safetensors_seeds()
    config_seeds()
    tokenizer_seeds()
    encoder_seeds()
    probe_seeds()
    template_seeds()
    adapter_seeds()
    for t in sorted(os.listdir(OUT)):
        d = os.path.join(OUT, t)
        if os.path.isdir(d):
            files = os.listdir(d)
            print(f"{t}: {len(files)} seeds, {sum(os.path.getsize(os.path.join(d, f)) for f in files)} bytes")
