"""What the golden scripts share about transformers models (no cpiscope code): loading a fixture model in
float32 with eager attention, and where each family keeps its blocks, attention, output projection and
geometry, so that hooks sit on the same points in every script. Imported by make_intervention_goldens.py
and make_attribution_goldens.py (run from the repository root; this folder is on their import path)."""
import torch
import transformers as T

# The transformers module of each model_type (for wrapping its eager attention function).
MODULE = {"gpt2": "gpt2", "gpt_neox": "gpt_neox", "llama": "llama", "qwen2": "qwen2", "olmo2": "olmo2",
          "gemma2": "gemma2", "phi3": "phi3", "qwen3": "qwen3", "mistral": "mistral"}


def load(path):
    return T.AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()


def blocks_of(model):
    mt = model.config.model_type
    if mt == "gpt2":
        return model.transformer.h
    if mt == "gpt_neox":
        return model.gpt_neox.layers
    return model.model.layers


def attn_of(block, mt):
    return block.attn if mt == "gpt2" else block.attention if mt == "gpt_neox" else block.self_attn


def o_proj_of(block, mt):
    """The attention output projection: its input is hook_z."""
    a = attn_of(block, mt)
    return a.c_proj if mt == "gpt2" else a.dense if mt == "gpt_neox" else a.o_proj


def geometry(cfg):
    """(heads, kv heads, d_head)."""
    H = cfg.num_attention_heads
    KV = getattr(cfg, "num_key_value_heads", None) or H
    dh = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    if cfg.model_type in ("gpt2", "gpt_neox"):
        dh = cfg.hidden_size // H
    return H, KV, dh
