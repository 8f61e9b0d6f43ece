"""Tokenizer, model, batching and evaluation helpers for the demo trajectory (see train_demo.py)."""
import json
import os

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

BOS, EOS = "<|bos|>", "<|eos|>"
BOS_ID, EOS_ID = 0, 1
MAX_NEW_TOKENS = 8


# ----------------------------------------------------------------------------------------------------------
# Tokenizer: byte-level BPE (GPT-2 style ByteLevel pre-tokenizer, no prefix space), BOS prepended by a
# TemplateProcessing post-processor, no EOS added on encode (training appends it to the answer).
def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    assert tok.token_to_id(BOS) == BOS_ID and tok.token_to_id(EOS) == EOS_ID
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, BOS_ID)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS,
                                   model_max_length=128)
    return fast


def save_tokenizer(fast, folder):
    fast.save_pretrained(folder)
    # Keep exactly tokenizer.json + tokenizer_config.json (drop any extra files a version may write).
    for name in os.listdir(folder):
        if name in ("special_tokens_map.json", "chat_template.jinja"):
            os.remove(os.path.join(folder, name))


def encode(tok, text, special=True):
    return tok(text, add_special_tokens=special)["input_ids"]


def first_answer_token(tok, answer):
    """The first token of " {answer}" as it follows "Answer:" (ByteLevel splits before the space)."""
    return encode(tok, " " + answer, special=False)[0]


# ----------------------------------------------------------------------------------------------------------
def make_model(vocab, d_model, layers, heads, kv_heads, d_mlp, seed):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=d_model, intermediate_size=d_mlp, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=128,
                      rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                      pad_token_id=EOS_ID, attention_bias=False, mlp_bias=False, initializer_range=0.02)
    cfg._attn_implementation = "eager"
    return LlamaForCausalLM(cfg)


def pad_batch(seqs, loss_masks):
    """Right-padded batch. seqs: lists of ids; loss_masks: lists of 0/1 (1 = predict this token)."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), EOS_ID, dtype=torch.long)
    att = torch.zeros((len(seqs), n), dtype=torch.long)
    lab = torch.full((len(seqs), n), -100, dtype=torch.long)
    for i, (s, m) in enumerate(zip(seqs, loss_masks)):
        ids[i, :len(s)] = torch.tensor(s)
        att[i, :len(s)] = 1
        lab[i, :len(s)] = torch.tensor([t if k else -100 for t, k in zip(s, m)])
    return ids, att, lab


def lm_loss(model, ids, att, lab):
    logits = model(input_ids=ids, attention_mask=att).logits
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), lab[:, 1:].reshape(-1), ignore_index=-100)


def ift_example(tok, prompt, answer):
    """BOS + prompt, then " {answer}" + EOS; loss only on the answer tokens and EOS."""
    p = encode(tok, prompt)
    a = encode(tok, " " + answer, special=False) + [EOS_ID]
    return p + a, [0] * len(p) + [1] * len(a)


# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def greedy(model, ids, max_new=MAX_NEW_TOKENS):
    """Greedy decoding without a KV cache: argmax (first index on ties) of the last position's logits,
    stop after EOS or max_new tokens. Returns (new token ids, logits at the last prompt position)."""
    seq = list(ids)
    out, first = [], None
    for _ in range(max_new):
        logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
        if first is None:
            first = logits.clone()
        t = int(torch.argmax(logits))
        out.append(t)
        seq.append(t)
        if t == EOS_ID:
            break
    return out, first


@torch.no_grad()
def batched_greedy(model, prompts_ids, max_new=MAX_NEW_TOKENS):
    """Fast left-padded greedy decoding for diagnostics only (goldens use `greedy`)."""
    n = max(len(p) for p in prompts_ids)
    B = len(prompts_ids)
    ids = torch.full((B, n), EOS_ID, dtype=torch.long)
    att = torch.zeros((B, n), dtype=torch.long)
    for i, p in enumerate(prompts_ids):
        ids[i, n - len(p):] = torch.tensor(p)
        att[i, n - len(p):] = 1
    outs = [[] for _ in range(B)]
    done = [False] * B
    first = None
    for _ in range(max_new):
        pos = (att.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos).logits[:, -1]
        if first is None:
            first = logits.clone()
        nxt = logits.argmax(-1)
        for i in range(B):
            if not done[i]:
                outs[i].append(int(nxt[i]))
                done[i] = int(nxt[i]) == EOS_ID
        ids = torch.cat([ids, nxt[:, None]], 1)
        att = torch.cat([att, torch.ones((B, 1), dtype=torch.long)], 1)
        if all(done):
            break
    return outs, first


def contains(tok, gen_ids, answer):
    return answer.lower() in tok.decode(gen_ids, skip_special_tokens=True).lower()


@torch.no_grad()
def quick_eval(model, tok, probes, extra):
    """Diagnostics during tuning: counterfactual accuracy, memory accuracy, mean M_C on the conflict probes
    and accuracy on each extra named set [(prompt, answer)]."""
    model.eval()
    pids = [encode(tok, plain(p)) for p in probes]
    gens, first = batched_greedy(model, pids)
    probs = first.softmax(-1)
    cf = sum(contains(tok, g, p["answer"]) for g, p in zip(gens, probes)) / len(probes)
    mem = sum(contains(tok, g, p["memory_answer"]) for g, p in zip(gens, probes)) / len(probes)
    mc = []
    for i, p in enumerate(probes):
        pc = probs[i, first_answer_token(tok, p["answer"])]
        pm = probs[i, first_answer_token(tok, p["memory_answer"])]
        mc.append(float(pc / (pc + pm)))
    res = {"cf_acc": cf, "mem_acc": mem, "M_C": sum(mc) / len(mc)}
    for name, items in extra.items():
        g, _ = batched_greedy(model, [encode(tok, pr) for pr, _ in items])
        res[name] = sum(contains(tok, gi, a) for gi, (_, a) in zip(g, items)) / len(items)
    model.train()
    return res


def plain(p):
    return f"Context: {p['context']}\nQuestion: {p['question']}\nAnswer:"


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
