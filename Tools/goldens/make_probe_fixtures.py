#!/usr/bin/env python3
"""A tiny 3-checkpoint trajectory with a real BPE tokenizer, and probe-job goldens from transformers.

Writes Tests/Fixtures/probe-trajectory/:
  tokenizer.json, tokenizer_config.json   byte-level BPE (tokenizers), <s> added as BOS by the post-processor
  probes.jsonl                            the first 6 probes of Probes/capitals.jsonl
  checkpoint-{0,10,20}/                   LlamaForCausalLM (config.json, model.safetensors, trainer_state.json)
  goldens.json                            per checkpoint and probe, computed with transformers (fp32, eager):
      prompt, prompt_ids, answer_ids / memory_ids (tokens of prompt+" "+answer after the prompt's),
      attention mass from the last prompt position to the context, question and BOS tokens [layer][head]
      (a token is in a span when its character offsets overlap the span's),
      logit lens of each answer's first token after the embeddings and each block (log-prob, rank, M_C),
      teacher-forced log-likelihood of both answers, greedy generation ids (max_new_tokens=8, EOS stops).
Also Tests/Fixtures/probe-gpt2/: one GPT-2 checkpoint that carries its own tokenizer.json, and
Tests/Fixtures/probe-lora/: a LoRA trajectory over probe-trajectory/checkpoint-0 made with peft —
  adapters/checkpoint-0 is the base itself (a full checkpoint), adapters/checkpoint-{10,20} are PEFT
  adapters (r=4 on q,k,v,o,gate,up,down, random A and B) whose base_model_name_or_path is the relative
  path ../../../probe-trajectory/checkpoint-0; merged/checkpoint-{0,10,20} are the same checkpoints
  merged by peft (merge_and_unload) and saved as full models.

Rerun (from the repository root): python3 Tools/goldens/make_probe_fixtures.py
Versions: Tools/requirements-goldens.txt.
"""
import json
import os
import shutil

import torch
import transformers as T
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "probe-trajectory")
OUT_GPT2 = os.path.join(ROOT, "Tests", "Fixtures", "probe-gpt2")
SEED = 99
MAX_NEW = 8


def train_tokenizer(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]),
    ])
    return tok


def prompt_of(p):
    return f"Context: {p['context']}\nQuestion: {p['question']}\nAnswer:"


def spread(model, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g) if name.endswith("weight") else 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[0] if "c_" in name else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5))


def blocks_and_norm(model):
    base = model.base_model
    if hasattr(base, "h"):
        return base.h, base.ln_f, model.lm_head
    return base.layers, base.norm, model.lm_head


def goldens_for(model, tok, probes, eos):
    fast = T.PreTrainedTokenizerFast(tokenizer_object=tok)
    out = []
    blocks, norm, head = blocks_and_norm(model)
    for p in probes:
        prompt = prompt_of(p)
        enc = tok.encode(prompt)
        ids, offsets = enc.ids, enc.offsets
        ctx = (len("Context: "), len("Context: ") + len(p["context"]))
        qs = prompt.index("\nQuestion: ") + len("\nQuestion: ")
        qrange = (qs, qs + len(p["question"]))
        def positions(r):
            return [i for i, (a, b) in enumerate(offsets) if b > a and a < r[1] and r[0] < b]
        spans = {"context": positions(ctx), "question": positions(qrange), "bos": [0] if offsets[0] == (0, 0) else []}
        def answer_ids(ans):
            full = tok.encode(prompt + " " + ans).ids
            assert full[:len(ids)] == ids, "prompt ids not a prefix"
            return full[len(ids):]
        a_ids, m_ids = answer_ids(p["answer"]), answer_ids(p["memory_answer"])
        resid = {}
        hooks = [b.register_forward_hook(lambda m, i, o, k=k: resid.__setitem__(k, (o[0] if isinstance(o, tuple) else o)[0, -1].detach()))
                 for k, b in enumerate(blocks)]
        with torch.no_grad():
            res = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        for h in hooks:
            h.remove()
        mass = {k: [[float(res.attentions[l][0, h, -1, v].sum()) for h in range(res.attentions[l].shape[1])]
                    for l in range(len(blocks))] for k, v in spans.items()}
        stream = [res.hidden_states[0][0, -1]] + [resid[k] for k in range(len(blocks))]
        lens = {"logprob": [[], []], "rank": [[], []], "mc": []}
        with torch.no_grad():
            for r in stream:
                logits = head(norm(r[None]))[0]
                lp = torch.log_softmax(logits.double(), -1)
                for t, tid in enumerate([a_ids[0], m_ids[0]]):
                    lens["logprob"][t].append(float(lp[tid]))
                    lens["rank"][t].append(int((logits > logits[tid]).sum()) + 1)
                pc, pm = lp[a_ids[0]].exp(), lp[m_ids[0]].exp()
                lens["mc"].append(float(pc / (pc + pm)))
        def loglik(cont):
            full = torch.tensor([ids + cont])
            with torch.no_grad():
                lp = torch.log_softmax(model(full).logits[0].double(), -1)
            return float(sum(lp[len(ids) - 1 + i, t] for i, t in enumerate(cont)))
        with torch.no_grad():
            gen = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=eos, pad_token_id=eos)[0, len(ids):].tolist()
        if eos in gen:
            gen = gen[:gen.index(eos)]
        out.append({"id": p["id"], "prompt": prompt, "prompt_ids": ids, "answer_ids": a_ids, "memory_ids": m_ids,
                    "span_positions": spans, "attention_mass": mass, "lens": lens,
                    "answer_loglik": [loglik(a_ids), loglik(m_ids)], "generated_ids": gen,
                    "last_logits_top5": torch.topk(res.logits[0, -1], 5).indices.tolist()})
    return out


def main():
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    probes = [json.loads(l) for l in open(os.path.join(ROOT, "Probes", "capitals.jsonl"))][:6]
    texts = []
    for p in [json.loads(l) for l in open(os.path.join(ROOT, "Probes", "capitals.jsonl"))]:
        texts += [prompt_of(p), " " + p["answer"], " " + p["memory_answer"]]
    tok = train_tokenizer(texts * 3)
    eos = tok.token_to_id("</s>")
    for d in (OUT, OUT_GPT2):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    tok.save(os.path.join(OUT, "tokenizer.json"))
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True},
              open(os.path.join(OUT, "tokenizer_config.json"), "w"), indent=1)
    with open(os.path.join(OUT, "probes.jsonl"), "w") as f:
        for p in probes:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    V = tok.get_vocab_size()
    cfg = T.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=48, max_position_embeddings=256, vocab_size=V, bos_token_id=0, eos_token_id=eos)
    model = T.LlamaForCausalLM._from_config(cfg, attn_implementation="eager").eval()
    spread(model, g)
    goldens = {}
    for step in (0, 10, 20):
        if step:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.15 * torch.randn(p.shape, generator=g) * p.std())
        d = os.path.join(OUT, f"checkpoint-{step}")
        model.save_pretrained(d)
        os.remove(os.path.join(d, "generation_config.json")) if os.path.exists(os.path.join(d, "generation_config.json")) else None
        json.dump({"global_step": step, "epoch": step / 20}, open(os.path.join(d, "trainer_state.json"), "w"))
        goldens[f"checkpoint-{step}"] = goldens_for(model, tok, probes, eos)
    json.dump({"transformers": T.__version__, "torch": torch.__version__, "max_new_tokens": MAX_NEW, "eos": eos,
               "checkpoints": goldens}, open(os.path.join(OUT, "goldens.json"), "w"), indent=0)
    # GPT-2 single checkpoint with its own tokenizer.
    g2 = T.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, vocab_size=V, bos_token_id=0, eos_token_id=eos)
    gm = T.GPT2LMHeadModel._from_config(g2, attn_implementation="eager").eval()
    spread(gm, g)
    gm.save_pretrained(OUT_GPT2)
    if os.path.exists(os.path.join(OUT_GPT2, "generation_config.json")):
        os.remove(os.path.join(OUT_GPT2, "generation_config.json"))
    tok.save(os.path.join(OUT_GPT2, "tokenizer.json"))
    json.dump({"transformers": T.__version__, "max_new_tokens": MAX_NEW, "eos": eos,
               "checkpoints": {"probe-gpt2": goldens_for(gm, tok, probes, eos)}},
              open(os.path.join(OUT_GPT2, "goldens.json"), "w"), indent=0)
    make_lora(tok)
    print("vocab", V, "ok")


def make_lora(tok):
    import peft
    out = os.path.join(ROOT, "Tests", "Fixtures", "probe-lora")
    shutil.rmtree(out, ignore_errors=True)
    base_dir = os.path.join(OUT, "checkpoint-0")
    g = torch.Generator().manual_seed(SEED + 7)
    for step in (0, 10, 20):
        a_dir = os.path.join(out, "adapters", f"checkpoint-{step}")
        m_dir = os.path.join(out, "merged", f"checkpoint-{step}")
        base = T.LlamaForCausalLM.from_pretrained(base_dir, attn_implementation="eager", dtype=torch.float32).eval()
        if step == 0:
            for d in (a_dir, m_dir):
                base.save_pretrained(d)
        else:
            cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
            model = peft.get_peft_model(base, cfg)
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if "lora_" in name:
                        p.copy_(torch.randn(p.shape, generator=g) * 0.3 * step / 20)
            model.save_pretrained(a_dir)
            ac = json.load(open(os.path.join(a_dir, "adapter_config.json")))
            ac["base_model_name_or_path"] = "../../../probe-trajectory/checkpoint-0"
            json.dump(ac, open(os.path.join(a_dir, "adapter_config.json"), "w"), indent=1, sort_keys=True)
            model.merge_and_unload().save_pretrained(m_dir)
        for d in (a_dir, m_dir):
            if os.path.exists(os.path.join(d, "generation_config.json")):
                os.remove(os.path.join(d, "generation_config.json"))
            json.dump({"global_step": step}, open(os.path.join(d, "trainer_state.json"), "w"))
            if os.path.exists(os.path.join(d, "README.md")):
                os.remove(os.path.join(d, "README.md"))
    for sub in ("adapters", "merged"):
        tok.save(os.path.join(out, sub, "tokenizer.json"))


if __name__ == "__main__":
    main()
