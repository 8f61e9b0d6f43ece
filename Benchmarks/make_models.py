#!/usr/bin/env python3
"""Random-weight benchmark models, saved with transformers' save_pretrained into Benchmarks/models/
(git-ignored). Shapes (issue #8):
  gpt2-small     GPT-2 124M shape: d_model 768, 12 layers, 12 heads, vocab 50257, 1024 positions
  llama-160m     Llama-style ~160M with GQA: d_model 768, 12 layers, 12 heads / 4 kv heads, d_mlp 2048, vocab 32000
  llama-160m-bf16  the same weights stored as BF16
Also an 8-checkpoint trajectory of gpt2-small (checkpoint-0..7, weights perturbed per step) for the
whole-job benchmark, under Benchmarks/models/gpt2-small-trajectory/.

Rerun: python3 Benchmarks/make_models.py [--trajectory]
"""
import argparse
import json
import os

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trajectory", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    gpt2 = T.GPT2LMHeadModel(T.GPT2Config())
    save(gpt2, "gpt2-small")
    llama_cfg = T.LlamaConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                              intermediate_size=2048, vocab_size=32000, max_position_embeddings=4096,
                              tie_word_embeddings=False)
    llama = T.LlamaForCausalLM(llama_cfg)
    save(llama, "llama-160m")
    save(llama, "llama-160m-bf16", dtype=torch.bfloat16)
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
