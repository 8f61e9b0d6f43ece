#!/usr/bin/env python3
"""PEFT LoRA adapters on the tiny fixture models, with goldens from peft's merged model.

Reference: Hugging Face `peft` 0.21.2 over `transformers` 5.24.0 (versions pinned in
Tools/requirements-goldens.txt), fp32, CPU, eager attention. Bases are the fixture models under
Tests/Fixtures/models/ (read, never written). Output: Tests/Fixtures/lora/.

Per parity case Tests/Fixtures/lora/<name>/:
  adapter_config.json, adapter_model.safetensors   exactly what `PeftModel.save_pretrained` wrote, except
                                                   that base_model_name_or_path is rewritten to a path
                                                   relative to the adapter folder (so the fixture moves
                                                   with the repository), target_modules / exclude_modules
                                                   lists are sorted (PEFT writes its sets in hash order),
                                                   and README.md is dropped
  golden.json, golden.safetensors                  the format of make_model_fixtures.py (logits, embed,
                                                   resid_post, ln_final, attn per sequence), computed
                                                   from `merge_and_unload()` of the adapted model

PEFT initialises lora_B to zero (the adapter starts as a no-op); here A and B are both set to random
values, and modules_to_save copies are perturbed, so that every adapted weight really changes.
Each saved adapter is reloaded with `PeftModel.from_pretrained` and merged again as a round-trip check.

Trajectory (Tests/Fixtures/lora/trajectory-adapter/ and trajectory-merged/): checkpoint-0 is a copy of the
base model (a full checkpoint), checkpoint-1 and checkpoint-2 are adapters whose base_model_name_or_path
is "../checkpoint-0"; every checkpoint has trainer_state.json. trajectory-merged holds the same three
checkpoints as full models saved by peft (`merge_and_unload().save_pretrained`).

matching.json: PEFT's own target / rank / alpha matching (`check_target_module_exists`,
`get_pattern_key`) evaluated on real module names for several configs, for the Swift matcher tests.

Rerun (from the repository root, ~20 s):
    python3 -m pip install -r Tools/requirements-goldens.txt
    python3 Tools/goldens/make_lora_fixtures.py            # everything
    python3 Tools/goldens/make_lora_fixtures.py NAME...    # only these parity cases
"""
import hashlib
import json
import os
import shutil
import sys
import warnings

import peft
import torch
import transformers
from peft.tuners.tuners_utils import check_target_module_exists
from peft.utils.other import get_pattern_key
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import SEED, capture, sequences  # noqa: E402  (same golden format)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures")
MODELS = os.path.normpath(os.path.join(FIXTURES, "models"))
ROOT = os.path.normpath(os.path.join(FIXTURES, "lora"))

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()


def load_base(name):
    m = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(MODELS, name), attn_implementation="eager",
                                                          dtype=torch.float32)
    return m.eval()


def randomise(pm, seed):
    """Random A and B (B is zero after PEFT's init) and perturbed modules_to_save copies."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if ".lora_A." in name:      # [r, in]
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            elif ".lora_B." in name:    # [out, r]
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 / p.shape[1] ** 0.5))
            elif ".modules_to_save." in name:
                p.add_(0.2 * torch.randn(p.shape, generator=g))


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def save_adapter(pm, out, base_dir, base_ref=None):
    pm.save_pretrained(out)
    readme = os.path.join(out, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    cfg_path = os.path.join(out, "adapter_config.json")
    cfg = json.load(open(cfg_path))
    cfg["base_model_name_or_path"] = base_ref or os.path.relpath(base_dir, out)
    # PEFT keeps target_modules / exclude_modules as Python sets and writes them in hash order; sort them so
    # that reruns write identical files (the order has no meaning).
    for key in ("target_modules", "exclude_modules"):
        if isinstance(cfg.get(key), list):
            cfg[key] = sorted(cfg[key])
    json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
    open(cfg_path, "a").write("\n")


def roundtrip_check(out, base_name, merged, seqs):
    """Reloads the saved adapter with peft and checks it merges to the same model."""
    again = peft.PeftModel.from_pretrained(load_base(base_name), out).merge_and_unload().eval()
    for ids in seqs:
        d = (logits_of(again, ids) - logits_of(merged, ids)).abs().max().item()
        assert d < 1e-5, f"{out}: reloaded adapter differs from the saved one by {d}"


def lora_modules(pm):
    """PEFT's own rank and scale of every LoRA layer, by module name in the base model."""
    out = {}
    for name, mod in pm.named_modules():
        if isinstance(mod, peft.tuners.lora.LoraLayer) and "default" in mod.r:
            out[name[len("base_model.model."):]] = {"r": mod.r["default"], "alpha": mod.lora_alpha["default"],
                                                    "scale": mod.scaling["default"]}
    return out


def file_hashes(folder, names):
    """SHA-256 of each file and of the manifest `sha256sum` prints for them (the Swift contentHash rule)."""
    each = {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in names}
    manifest = "".join(f"{each[n]}  {n}\n" for n in sorted(each))
    return {"files": each, "content_hash": "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()}


def write_golden(model, out, description, base_name, lora_config, seqs, base_model, modules):
    tensors = {}
    for s, ids in enumerate(seqs):
        for k, v in capture(model, ids).items():
            tensors[f"s{s}.{k}"] = v.contiguous()
    # Guard against a silent no-op adapter: the merged logits must differ clearly from the base's.
    change = max((logits_of(model, ids) - logits_of(base_model, ids)).abs().max().item() for ids in seqs)
    assert change > 0.05, f"{out}: the adapter barely changes the logits ({change})"
    save_file(tensors, os.path.join(out, "golden.safetensors"))
    json.dump({"description": description, "base": os.path.relpath(os.path.join(MODELS, base_name), out),
               "sequences": seqs, "max_logit_change_vs_base": change, "peft": peft.__version__,
               "transformers": transformers.__version__, "torch": torch.__version__, "seed": SEED,
               "lora_config": {k: (sorted(v) if isinstance(v, set) else v) for k, v in lora_config.items()},
               "modules": modules,
               "hashes": file_hashes(out, ["adapter_config.json", "adapter_model.safetensors"])},
              open(os.path.join(out, "golden.json"), "w"), indent=1)


def build(name, base_name, description, seed, **lora_kwargs):
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    torch.manual_seed(SEED)
    pm = peft.get_peft_model(load_base(base_name), peft.LoraConfig(**lora_kwargs))
    randomise(pm, seed)
    save_adapter(pm, out, os.path.join(MODELS, base_name))
    modules = lora_modules(pm)
    merged = pm.merge_and_unload().eval()
    seqs = sequences()
    roundtrip_check(out, base_name, merged, seqs)
    write_golden(merged, out, description, base_name, lora_kwargs, seqs, load_base(base_name), modules)
    print(f"{name}: {sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))} bytes")


def trainer_state(folder, step):
    json.dump({"global_step": step, "epoch": step / 20, "log_history": []},
              open(os.path.join(folder, "trainer_state.json"), "w"), indent=1)


def build_trajectory(base_name="llama-gqa"):
    """checkpoint-0 = the base (full), checkpoint-1..2 = adapters; and the same three merged by peft."""
    ad_root = os.path.join(ROOT, "trajectory-adapter")
    mg_root = os.path.join(ROOT, "trajectory-merged")
    for r in (ad_root, mg_root):
        shutil.rmtree(r, ignore_errors=True)
        os.makedirs(r)
    steps = [0, 10, 20]
    for r in (ad_root, mg_root):
        c0 = os.path.join(r, "checkpoint-0")
        os.makedirs(c0)
        for f in ("config.json", "model.safetensors"):
            shutil.copy(os.path.join(MODELS, base_name, f), c0)
        trainer_state(c0, steps[0])
    for i, step in enumerate(steps[1:], start=1):
        torch.manual_seed(SEED)
        cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                              task_type="CAUSAL_LM")
        pm = peft.get_peft_model(load_base(base_name), cfg)
        randomise(pm, 100 + i)
        ad = os.path.join(ad_root, f"checkpoint-{step}")
        save_adapter(pm, ad, None, base_ref="../checkpoint-0")
        trainer_state(ad, step)
        merged = pm.merge_and_unload().eval()
        mg = os.path.join(mg_root, f"checkpoint-{step}")
        merged.save_pretrained(mg, safe_serialization=True)
        for extra in ("generation_config.json",):
            if os.path.exists(os.path.join(mg, extra)):
                os.remove(os.path.join(mg, extra))
        trainer_state(mg, step)
        reloaded = peft.PeftModel.from_pretrained(load_base(base_name), ad).merge_and_unload().eval()
        for ids in sequences():
            d = (logits_of(reloaded, ids) - logits_of(merged, ids)).abs().max().item()
            assert d < 1e-5, f"{ad}: reloaded adapter differs from the merged model by {d}"
    for r in (ad_root, mg_root):
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(r) for f in fs)
        print(f"{os.path.basename(r)}: {size} bytes")


def build_matching():
    """PEFT's matching functions on real module names, for several configs."""
    names = {}
    for base in ("llama-gqa", "gpt2-tied", "neox-parallel", "llama-sharded"):
        names[base] = [n for n, _ in load_base(base).named_modules() if n]
    cases = [
        ("suffix list", "llama-gqa", dict(target_modules=["q_proj", "v_proj"])),
        ("exact full name in list", "llama-gqa", dict(target_modules=["model.layers.1.mlp.up_proj", "o_proj"])),
        ("list entry is not a dotted suffix", "llama-gqa", dict(target_modules=["proj", "_proj", "self_attn.k_proj"])),
        ("regex string (fullmatch)", "llama-gqa", dict(target_modules=r".*\.(q|k)_proj")),
        ("regex string that only matches a prefix", "llama-gqa", dict(target_modules=r"model\.layers\.0")),
        ("regex with layer index", "llama-sharded", dict(target_modules=r"model\.layers\.[12]\.mlp\.(gate|down)_proj")),
        ("layers_to_transform without layers_pattern", "llama-sharded",
         dict(target_modules=["q_proj", "down_proj"], layers_to_transform=[0, 2])),
        ("layers_to_transform int with layers_pattern", "llama-sharded",
         dict(target_modules=["v_proj"], layers_to_transform=1, layers_pattern="layers")),
        ("layers_pattern list, one wrong", "neox-parallel",
         dict(target_modules=["query_key_value", "dense"], layers_to_transform=[1], layers_pattern=["blocks", "layers"])),
        ("exclude_modules list", "llama-gqa",
         dict(target_modules=["q_proj", "v_proj"], exclude_modules=["layers.0.self_attn.q_proj"])),
        ("exclude_modules regex", "llama-sharded",
         dict(target_modules=["up_proj", "down_proj"], exclude_modules=r".*\.1\..*")),
        ("modules_to_save excludes targets", "llama-gqa",
         dict(target_modules=["q_proj", "up_proj", "lm_head"], modules_to_save=["up_proj"])),
        ("gpt2 Conv1D names", "gpt2-tied", dict(target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)),
        ("neox names", "neox-parallel", dict(target_modules=["query_key_value", "dense_4h_to_h"])),
        ("rank and alpha patterns", "llama-sharded",
         dict(target_modules=["q_proj", "v_proj", "down_proj"], r=8, lora_alpha=16,
              rank_pattern={"q_proj": 2, r"layers\.1\.self_attn\.v_proj": 5, r"model\.layers\.2\.mlp\.down_proj": 3,
                            "down_proj": 7},
              alpha_pattern={r"layers\.[01]\.self_attn\.q_proj": 3, "proj": 99})),
        ("pattern order decides", "llama-gqa",
         dict(target_modules=["v_proj"], rank_pattern={r".*v_proj": 3, r"layers\.1\.self_attn\.v_proj": 6})),
    ]
    out = []
    for title, base, kw in cases:
        cfg = peft.LoraConfig(**kw)
        rows = []
        for n in names[base]:
            targeted = bool(check_target_module_exists(cfg, n))
            rk = get_pattern_key(list(cfg.rank_pattern.keys()), n)
            ak = get_pattern_key(list(cfg.alpha_pattern.keys()), n)
            rows.append({"module": n, "targeted": targeted, "r": cfg.rank_pattern.get(rk, cfg.r),
                         "alpha": cfg.alpha_pattern.get(ak, cfg.lora_alpha)})
        config = {k: (sorted(v) if isinstance(v, set) else v) for k, v in kw.items()}
        config.setdefault("r", cfg.r)
        config.setdefault("lora_alpha", cfg.lora_alpha)
        config["peft_type"] = "LORA"
        # config_json keeps the pattern order PEFT used (insertion order), which decides rank/alpha.
        out.append({"title": title, "base": base, "config_json": json.dumps(config), "modules": rows})
    json.dump({"peft": peft.__version__, "cases": out}, open(os.path.join(ROOT, "matching.json"), "w"), indent=1)
    print(f"matching.json: {os.path.getsize(os.path.join(ROOT, 'matching.json'))} bytes")


def main():
    torch.set_num_threads(1)
    os.makedirs(ROOT, exist_ok=True)
    only = set(sys.argv[1:])   # names to rebuild (default: everything)
    global build
    if only:
        full_build = build
        def build(name, *a, **k):
            if name in only:
                full_build(name, *a, **k)
    build("llama-all-proj", "llama-gqa", "Llama GQA, LoRA on q, k, v, o, gate, up, down (task_type CAUSAL_LM)", 11,
          r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
          task_type="CAUSAL_LM")
    build("gpt2-fan-in-fan-out", "gpt2-tied", "GPT-2, LoRA on Conv1D c_attn, c_proj, c_fc with fan_in_fan_out", 12,
          r=4, lora_alpha=16, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True)
    build("llama-rslora-patterns", "llama-rope-llama3",
          "Llama (head_dim 12, biases), regex targets, rsLoRA, rank_pattern, alpha_pattern, exclude_modules", 13,
          r=4, lora_alpha=6, use_rslora=True, target_modules=r".*\.(q_proj|v_proj|down_proj)",
          rank_pattern={"q_proj": 2, r"model\.layers\.1\.mlp\.down_proj": 6}, alpha_pattern={"v_proj": 3},
          exclude_modules=["layers.0.self_attn.v_proj"])
    build("neox-layers-to-transform", "neox-parallel", "GPT-NeoX, layers_to_transform [1] with layers_pattern", 14,
          r=4, lora_alpha=4, target_modules=["query_key_value", "dense_h_to_4h"], layers_to_transform=[1],
          layers_pattern="layers")
    build("llama-modules-to-save", "llama-gqa", "Llama, all-linear targets plus modules_to_save lm_head and "
          "post_attention_layernorm (full replacement tensors)", 15,
          r=2, lora_alpha=2, target_modules="all-linear", modules_to_save=["lm_head", "post_attention_layernorm"])
    # Families of issue 19: PEFT's default target modules for the model_type where peft 0.21.2 has them
    # (qwen3, gemma2: q_proj and v_proj); the family's projection names otherwise (olmo2, phi3 have none).
    build("qwen3-default-targets", "qwen3", "Qwen3 (per-head q/k norms), PEFT's default targets (target_modules=None)", 16,
          r=4, lora_alpha=8)
    build("gemma2-default-targets", "gemma2-softcap", "Gemma-2, PEFT's default targets (target_modules=None)", 17,
          r=4, lora_alpha=8)
    build("olmo2-all-proj", "olmo2", "OLMo-2, LoRA on every projection (peft has no default for olmo2)", 18,
          r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    build("phi3-fused-proj", "phi3-longrope", "Phi-3, LoRA on the fused qkv_proj and gate_up_proj and on o_proj, down_proj "
          "(peft has no default for phi3)", 19, r=4, lora_alpha=8,
          target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])
    if only:
        return
    build_trajectory()
    build_matching()


if __name__ == "__main__":
    main()
