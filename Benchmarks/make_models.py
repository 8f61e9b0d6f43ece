#!/usr/bin/env python3
"""Random-weight benchmark models, saved with transformers' save_pretrained into Benchmarks/models/
(git-ignored). Shapes (issue #8):
  gpt2-small     GPT-2 124M shape: d_model 768, 12 layers, 12 heads, vocab 50257, 1024 positions
  llama-160m     Llama-style ~160M with GQA: d_model 768, 12 layers, 12 heads / 4 kv heads, d_mlp 2048, vocab 32000
  llama-160m-bf16  the same weights stored as BF16
  llama-160m-f16   the same weights stored as F16 (issue 15: the F16 precision default is measured on it)
Also an 8-checkpoint trajectory of gpt2-small (checkpoint-0..7, weights perturbed per step) for the
whole-job benchmark, under Benchmarks/models/gpt2-small-trajectory/.

With --llama7b-bf16 (issue 15): llama-7b-bf16, a Llama-2-7B-shaped model (d_model 4096, 32 layers, 32
heads, d_mlp 11008, vocab 32000) with random BF16 weights (normal, std 0.02; norms 1) in two shards plus
model.safetensors.index.json, and the Llama-2 tokenizer from ../shared/tokenizers/llama-2 when present.
It is written tensor by tensor straight into safetensors files (13.5 GB on disk; peak memory about one
tensor), without building the model in float32.

Rerun: python3 Benchmarks/make_models.py [--trajectory] [--llama7b-bf16]
"""
import argparse
import json
import os
import shutil

import torch
import transformers as T

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def save(model, name, dtype=None):
    path = os.path.join(OUT, name)
    if os.path.exists(os.path.join(path, "config.json")):
        return path
    os.makedirs(path, exist_ok=True)
    (model.to(dtype) if dtype else model).save_pretrained(path)
    print("saved", path)
    return path


LLAMA7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
               intermediate_size=11008, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5,
               tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)


def llama7b_tensors(c):
    """(name, shape) of every Llama-2-7B tensor, in shard order: embeddings and the first half of the layers,
    then the second half, the final norm and the LM head."""
    d, f, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    layer = lambda i: [(f"model.layers.{i}.{n}", s) for n, s in [
        ("input_layernorm.weight", [d]), ("self_attn.q_proj.weight", [d, d]), ("self_attn.k_proj.weight", [d, d]),
        ("self_attn.v_proj.weight", [d, d]), ("self_attn.o_proj.weight", [d, d]),
        ("post_attention_layernorm.weight", [d]), ("mlp.gate_proj.weight", [f, d]), ("mlp.up_proj.weight", [f, d]),
        ("mlp.down_proj.weight", [d, f])]]
    first = [("model.embed_tokens.weight", [V, d])] + [t for i in range(L // 2) for t in layer(i)]
    second = [t for i in range(L // 2, L) for t in layer(i)] + [("model.norm.weight", [d]), ("lm_head.weight", [V, d])]
    return [first, second]


def write_bf16_safetensors(path, tensors, gen):
    """Writes random BF16 tensors (norm weights 1, others normal with std 0.02) as one safetensors file,
    generating and writing one tensor at a time."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors:
        n = 2 * torch.Size(shape).numel()
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".part", "wb") as out:
        out.write(len(text).to_bytes(8, "little"))
        out.write(text)
        for name, shape in tensors:
            if name.endswith("norm.weight"):
                t = torch.ones(shape, dtype=torch.bfloat16)
            else:
                t = (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16)
            out.write(t.view(torch.int16).numpy().tobytes())
            del t
    os.replace(path + ".part", path)


def save_llama7b_bf16():
    path = os.path.join(OUT, "llama-7b-bf16")
    os.makedirs(path, exist_ok=True)
    shards = llama7b_tensors(LLAMA7B)
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    gen = torch.Generator().manual_seed(7)
    for name, tensors in zip(names, shards):
        if not os.path.exists(os.path.join(path, name)):
            write_bf16_safetensors(os.path.join(path, name), tensors, gen)
            print("saved", os.path.join(path, name))
    total = sum(2 * torch.Size(s).numel() for shard in shards for _, s in shard)
    index = {"metadata": {"total_size": total},
             "weight_map": {t: names[i] for i, shard in enumerate(shards) for t, _ in shard}}
    json.dump(index, open(os.path.join(path, "model.safetensors.index.json"), "w"), indent=1)
    T.LlamaConfig(**LLAMA7B, dtype="bfloat16").save_pretrained(path)
    tok = os.path.join(os.path.dirname(OUT), "..", "..", "shared", "tokenizers", "llama-2")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(tok, f)):
            shutil.copy(os.path.join(tok, f), path)
    print("saved", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trajectory", action="store_true")
    ap.add_argument("--llama7b-bf16", action="store_true", help="also the 7B-shaped BF16 model (13.5 GB)")
    a = ap.parse_args()
    if a.llama7b_bf16:
        save_llama7b_bf16()
    torch.manual_seed(0)
    gpt2 = T.GPT2LMHeadModel(T.GPT2Config())
    save(gpt2, "gpt2-small")
    llama_cfg = T.LlamaConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                              intermediate_size=2048, vocab_size=32000, max_position_embeddings=4096,
                              tie_word_embeddings=False)
    llama = T.LlamaForCausalLM(llama_cfg)
    save(llama, "llama-160m")
    save(llama, "llama-160m-bf16", dtype=torch.bfloat16)
    save(llama, "llama-160m-f16", dtype=torch.float16)
    if a.trajectory:
        root = os.path.join(OUT, "gpt2-small-trajectory")
        for step in range(8):
            path = os.path.join(root, f"checkpoint-{step * 100}")
            if os.path.exists(os.path.join(path, "model.safetensors")):
                continue
            with torch.no_grad():
                for p in gpt2.parameters():
                    p.add_(0.001 * torch.randn_like(p))
            os.makedirs(path, exist_ok=True)
            gpt2.save_pretrained(path)
            json.dump({"global_step": step * 100}, open(os.path.join(path, "trainer_state.json"), "w"))
            print("saved", path)


if __name__ == "__main__":
    main()
