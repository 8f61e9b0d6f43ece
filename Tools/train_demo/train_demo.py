#!/usr/bin/env python3
"""Builds cpiscope's bundled demo trajectory: a synthetic world, a byte-level BPE tokenizer, a small Llama
pretrained from scratch until it has memorised the world's facts, then instruction finetuning (IFT) on a
mixture of C, C+S and S points (Section 4.1 of Goyal, Baek et al., "Context-Parametric Inversion"), twice:
full finetuning and LoRA. Writes (relative to the repository root):

  Demo/base/                   pretrained model + tokenizer (the base of both runs)
  Demo/full-ft/checkpoint-N/   full-finetuning checkpoints (model.safetensors, config.json,
                               trainer_state.json, tokenizer.json, tokenizer_config.json)
  Demo/lora/checkpoint-N/      LoRA checkpoints (adapter_model.safetensors, adapter_config.json with
                               base_model_name_or_path "../../base", trainer_state.json, tokenizer files)
  Demo/training_curves.json    the arguments and the diagnostics logged at every checkpoint
  Probes/demo_heldout.jsonl    the held-out conflict probes
(Demo/goldens/ is written by goldens.py; Demo/README.md explains everything.)

Rerun (from the repository root; CPU, one thread, ~15 minutes on a busy 2-core machine, nearly all of it
pretraining; bit-reproducible for a given torch build and CPU):
    python3 -m pip install -r Tools/requirements-train.txt
    python3 Tools/train_demo/train_demo.py --seed 0
    python3 Tools/train_demo/goldens.py
    python3 Tools/train_demo/curves_table.py      # the tables of Demo/README.md

Tuning mode (nothing written; prints curves): python3 Tools/train_demo/train_demo.py --tune full --base Demo/base
"""
import argparse
import json
import os
import random
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world as W  # noqa: E402
from common import (EOS_ID, encode, ift_example, lm_loss, make_model, pad_batch, quick_eval,  # noqa: E402
                    save_tokenizer, train_tokenizer, write_json)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def args_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "Demo"))
    ap.add_argument("--probes-out", default=os.path.join(ROOT, "Probes", "demo_heldout.jsonl"))
    ap.add_argument("--tune", choices=["full", "lora"], help="run one IFT in memory and print curves")
    ap.add_argument("--base", help="with --tune: reuse this pretrained base instead of pretraining")
    # world
    ap.add_argument("--n-probe", type=int, default=48)
    ap.add_argument("--n-distract", type=int, default=1, help="distractor sentences in each context")
    ap.add_argument("--no-qa-pretrain", action="store_true", help="no 'Q: ... A: ...' lines in pretraining")
    ap.add_argument("--probe-overlap", action="store_true",
                    help="probe facts also appear (with their true context) as C+S and S points")
    # model / tokenizer
    ap.add_argument("--vocab", type=int, default=768)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--d-mlp", type=int, default=256)
    # pretraining
    ap.add_argument("--pt-steps", type=int, default=3500)
    ap.add_argument("--pt-docs", type=int, default=2000, help="fresh reading documents per pretraining epoch")
    ap.add_argument("--pt-doc-distract", type=int, default=1, help="distractor sentences per reading document")
    ap.add_argument("--pt-doc-quiz", type=float, default=1.0, help="probability of a quiz line in a document")
    ap.add_argument("--pt-lr", type=float, default=3e-3)
    # IFT
    ap.add_argument("--n-c", type=int, default=50, help="distinct C points (repeated every epoch)")
    ap.add_argument("--n-cs", type=int, default=1200, help="C+S points")
    ap.add_argument("--n-s", type=int, default=400, help="S points")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3, help="full finetuning learning rate")
    ap.add_argument("--lora-lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=int, default=16)
    ap.add_argument("--runs", default="full,lora")
    return ap


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------------------------------
def build_data(a):
    world = W.build_world(a.seed, n_probe=a.n_probe, probe_overlap=a.probe_overlap)
    rng = random.Random(a.seed + 1)
    points, c_facts = W.ift_points(world, rng, a.n_c, a.n_cs, a.n_s, a.n_distract)
    return world, points, c_facts


def pretrain(a, world, tok):
    texts = W.pretraining_texts(world, qa_form=not a.no_qa_pretrain)
    facts = [encode(tok, t) + [EOS_ID] for t in texts]
    forbidden = W.world_names(world)
    doc_rng = random.Random(a.seed + 6)
    model = make_model(len(tok), a.d_model, a.layers, a.heads, a.kv_heads, a.d_mlp, a.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=a.pt_lr, weight_decay=0.0, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * max(0.1, 1 - s / a.pt_steps))
    rng, step, B, t0 = random.Random(a.seed + 2), 0, 64, time.time()
    model.train()
    while step < a.pt_steps:
        # Each epoch: every fact sentence once plus fresh reading documents (a.pt_docs per epoch).
        data = facts + [encode(tok, W.reading_document(doc_rng, world, forbidden, a.pt_doc_distract, a.pt_doc_quiz)) + [EOS_ID]
                        for _ in range(a.pt_docs)]
        order = list(range(len(data)))
        rng.shuffle(order)
        for i in range(0, len(order) - B + 1, B):
            b = [data[k] for k in order[i:i + B]]
            ids, att, lab = pad_batch(b, [[1] * len(s) for s in b])
            loss = lm_loss(model, ids, att, lab)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 250 == 0 or step == a.pt_steps:
                log(f"pretrain step {step} loss {loss.item():.3f} recall {recall(model, tok, world):.3f} "
                    f"reading {reading(model, tok, world, a):.3f} "
                    f"({time.time() - t0:.0f}s)")
            if step >= a.pt_steps:
                break
    return model


@torch.no_grad()
def reading(model, tok, world, a, n=192):
    """Fraction of fresh reading documents whose final (repeated) answer's first token is the argmax."""
    rng = random.Random(a.seed + 7)
    forbidden = W.world_names(world)
    items = []
    for _ in range(n):
        doc = W.reading_document(rng, world, forbidden, a.pt_doc_distract, a.pt_doc_quiz)
        head, _, ans = doc[:-1].rpartition(" ")
        items.append((encode(tok, head), encode(tok, " " + ans, special=False)[0]))
    return _argmax_acc(model, items)


def _argmax_acc(model, items):
    model.eval()
    ok = 0
    for i in range(0, len(items), 256):
        chunk = items[i:i + 256]
        ids, att, _ = pad_batch([p for p, _ in chunk], [[0] * len(p) for p, _ in chunk])
        lg = model(input_ids=ids, attention_mask=att).logits
        for j, (p, t) in enumerate(chunk):
            ok += int(int(lg[j, len(p) - 1].argmax()) == t)
    model.train()
    return ok / len(items)


@torch.no_grad()
def recall(model, tok, world):
    """Fraction of (memorised fact, paraphrase) pairs whose answer's first token is the argmax after the
    paraphrase's prefix (the pretraining sentence cut before the answer)."""
    items = []
    for f in world.memorised:
        for st in W.RELATIONS[f.relation]["statements"]:
            prefix = st.split("{a}")[0].rstrip().format(s=f.subject)
            items.append((encode(tok, prefix), encode(tok, " " + f.answer, special=False)[0]))
    return _argmax_acc(model, items)


# ----------------------------------------------------------------------------------------------------------
def diagnostics(world, c_facts, points, tok, a):
    rng = random.Random(a.seed + 3)
    c_train = [(p, ans) for k, p, ans in points if k == "C"][:48]
    fresh = W.fresh_context_probes(world, rng, 48, set(c_facts), a.n_distract)
    s_probe = [(W.recall_prompt(W.question(f)), f.answer) for f in world.probe_facts]
    c_mem = [(W.recall_prompt(W.question(f)), f.answer) for f in c_facts[:48]]
    return {"C_train": c_train, "C_mem": c_mem, "C_fresh": fresh, "S_probe": s_probe}


def ift(a, kind, base_dir, tok, points, probes, diag, save_root=None):
    """One IFT run. kind: "full" or "lora". Saves checkpoint-N every a.save_every steps (and step 0) when
    save_root is set; returns the diagnostic curve."""
    from transformers import LlamaForCausalLM
    from transformers.trainer_callback import TrainerState
    torch.manual_seed(a.seed + 10)
    model = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
    lr = a.lr
    if kind == "lora":
        from peft import LoraConfig, get_peft_model
        cfg = LoraConfig(r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=0.0, target_modules="all-linear",
                         bias="none", task_type="CAUSAL_LM")
        model = get_peft_model(model, cfg)
        lr = a.lora_lr
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=a.wd, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / a.warmup))
    examples = [ift_example(tok, p, ans) for _, p, ans in points]
    rng = random.Random(a.seed + 4)
    curve, log_history = [], []
    step, epoch, t0 = 0, 0, time.time()

    def checkpoint():
        res = quick_eval(model, tok, probes, diag)
        res["step"] = step
        curve.append(res)
        log(f"{kind} step {step:4d} ep {step * a.batch / len(examples):5.2f}  " +
            "  ".join(f"{k} {v:.3f}" for k, v in res.items() if k != "step") + f"  ({time.time() - t0:.0f}s)")
        if save_root:
            d = os.path.join(save_root, f"checkpoint-{step}")
            os.makedirs(d, exist_ok=True)
            model.save_pretrained(d)
            if kind == "lora":
                fix_adapter_config(d)
            save_tokenizer(tok, d)
            st = TrainerState(global_step=step, max_steps=a.steps, epoch=step * a.batch / len(examples),
                              save_steps=a.save_every, logging_steps=a.save_every,
                              train_batch_size=a.batch, log_history=list(log_history))
            st.save_to_json(os.path.join(d, "trainer_state.json"))

    model.train()
    checkpoint()
    losses = []
    while step < a.steps:
        order = list(range(len(examples)))
        rng.shuffle(order)
        epoch += 1
        for i in range(0, len(order) - a.batch + 1, a.batch):
            b = [examples[k] for k in order[i:i + a.batch]]
            ids, att, lab = pad_batch([s for s, _ in b], [m for _, m in b])
            loss = lm_loss(model, ids, att, lab)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            if step % a.save_every == 0:
                log_history.append({"step": step, "epoch": step * a.batch / len(examples),
                                    "loss": sum(losses) / len(losses), "learning_rate": sched.get_last_lr()[0]})
                losses = []
                checkpoint()
            if step >= a.steps:
                break
    return curve


def fix_adapter_config(d):
    """The adapter points at the base model by a path relative to the adapter folder (checkpoint-N/)."""
    p = os.path.join(d, "adapter_config.json")
    with open(p) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = "../../base"
    if isinstance(cfg.get("target_modules"), list):  # peft writes a set's order: make the file deterministic
        cfg["target_modules"] = sorted(cfg["target_modules"])
    write_json(p, cfg)
    readme = os.path.join(d, "README.md")  # peft's model card boilerplate: not needed
    if os.path.exists(readme):
        os.remove(readme)


# ----------------------------------------------------------------------------------------------------------
def main():
    import transformers
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    a = args_parser().parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    world, points, c_facts = build_data(a)
    from transformers import PreTrainedTokenizerFast
    if a.tune and a.base:
        tok = PreTrainedTokenizerFast.from_pretrained(a.base)
        base_dir = a.base
    else:
        corpus = W.tokenizer_corpus(world)
        tok = train_tokenizer(corpus, a.vocab)
        base_dir = os.path.join(a.out, "base")
        t0 = time.time()
        model = pretrain(a, world, tok)
        if a.tune:
            base_dir = "/tmp/demo_base_tune"
        if os.path.isdir(base_dir):
            shutil.rmtree(base_dir)
        model.save_pretrained(base_dir)
        save_tokenizer(tok, base_dir)
        log(f"pretraining done in {time.time() - t0:.0f}s -> {base_dir}")
    probes = W.conflict_probes(world, random.Random(a.seed + 5),
                               lambda ans: encode(tok, " " + ans, special=False)[0], a.n_distract)
    diag = diagnostics(world, c_facts, points, tok, a)
    counts = {k: sum(1 for p in points if p[0] == k) for k in ("C", "C+S", "S")}
    log(f"IFT points per epoch: {counts}; {len(probes)} held-out conflict probes")
    if a.tune:
        ift(a, a.tune, base_dir, tok, points, probes, diag)
        return
    os.makedirs(os.path.dirname(a.probes_out), exist_ok=True)
    with open(a.probes_out, "w") as f:
        for p in probes:
            f.write(json.dumps({k: p[k] for k in ("id", "context", "question", "answer", "memory_answer",
                                                  "subject")}) + "\n")
    curves = {}
    for kind in a.runs.split(","):
        name = {"full": "full-ft", "lora": "lora"}[kind]
        root = os.path.join(a.out, name)
        if os.path.isdir(root):
            shutil.rmtree(root)
        t0 = time.time()
        curves[name] = ift(a, kind, base_dir, tok, points, probes, diag, save_root=root)
        log(f"{name} done in {time.time() - t0:.0f}s")
    args = {k: (os.path.relpath(v, ROOT) if k in ("out", "probes_out", "base") and v else v)
            for k, v in vars(a).items()}
    write_json(os.path.join(a.out, "training_curves.json"), {"args": args, "ift_points": counts, "curves": curves})


if __name__ == "__main__":
    main()
