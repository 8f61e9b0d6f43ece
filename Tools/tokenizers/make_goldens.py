#!/usr/bin/env python3
"""Golden encodings for the Swift Tokenization module, made with Python `tokenizers`.

What it writes (under Tests/Fixtures/tokenizers/):
  trained/<style>/tokenizer.json   small BPE tokenizers trained here on a synthetic corpus, one per
                                   model family: gpt2, neox, llama3, qwen2 (byte-level) and llama2
                                   (SentencePiece-style BPE with byte fallback); + tokenizer_config.json
  corpus.json                      the texts: hand-written edge cases, random strings of tricky pieces
                                   (FUZZ_PIECES), and a sample of the contexts and questions of
                                   ../shared/datasets/context-parametric-inversion
  goldens/<config>.json            per tokenizer configuration: ids / offsets / tokens of every text,
                                   with and without special tokens, and decode results

A configuration is a base tokenizer (a trained one, or "shared:<name>" for the real tokenizer.json
files in ../shared/tokenizers, which are NOT copied into the project) plus optional JSON overrides
(a top-level key, or a dotted path such as "model.ignore_merges"), applied the same way by the
Swift tests. Every configuration stores, per text and per add_special_tokens in {False, True}:
  n: token count,  h: FNV-1a-64 of the encoding ("id<TAB>start<TAB>end<TAB>token\\n" per token,
  first 12 hex digits),
and for hand-written texts of base configurations the full ids/offsets/tokens too. Decoding stores
rt (decode(ids) == text) and FNV hashes of decode(ids) with skip_special_tokens False/True.

Rerun (from the repository root, with the pinned requirements installed):
    python3 -m pip install -r Tools/tokenizers/requirements.txt
    python3 Tools/tokenizers/make_goldens.py
The dataset sample is included only when ../shared/datasets exists at generation time; the real
tokenizer goldens only when ../shared/tokenizers exists. CI never runs this script.
"""
import copy
import json
import os
import random
import sys

import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
# When run from a git worktree, ../shared is beside the worktree; fall back to /work/shared.
if not os.path.isdir(SHARED) and os.path.isdir("/work/shared"):
    SHARED = "/work/shared"

EXPECTED_VERSION = "0.23.3"

# --------------------------------------------------------------------------------------------
# Texts

HANDCRAFTED = [
    "", " ", "  ", "   ", "\t", "\t\t ", "\n", "\r\n", "\r\n\r\n", " \n ", "\u00a0", "\u3000",
    "Hello world", "Hello  world", "Hello   world!", " Hello world", "Hello world ", "  Hello world  ",
    "The capital of Albania is Durrës.", "Durrës", "DURRËS durrës Durrës—Tirana",
    "“Curly quotes” and ‘single quotes’ — dashes… ellipsis",
    "He said, \"it's fine,\" and we'll see; I'M sure you've, they're, I'd, she's OK.",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'Ll ' s",
    "ſ 'ſ 'ſt K Å",
    "emoji: 😀 👍🏽 👨‍👩‍👧 🇫🇷 ✔️", "😀", "😀😀😀", "wide 𝕏 𝔸 𐍈 astral",
    "日本語のテキストです。東京", "中文 文本 和 English mixed",
    "Привет, мир! Ελληνικά Ωμέγα", "مرحبا بالعالم", "עברית",
    "combining: e\u0301 a\u0301\u0302 n\u0303 o\u0308\u0304 \u0301start",
    "precomposed: é á ñ ö ǖ Ǖ",
    "a\u0300\u0301\u0302\u0303\u0304\u0305\u0306 many combining", "\u0345\u0301 leading combining",
    "ṩ \u1e61\u0323 s\u0307\u0323 s\u0323\u0307 ordering",
    "Hangul: 한국어 \u1100\u1161\u11a8 \u1100\u1161",
    "compat: ﬁ ﬀ ① ² ℌ Ⅻ ｆｕｌｌ　ｗｉｄｔｈ ㍿ ＡＢＣ",
    "İstanbul ǅ ﬃ ß ẞ Σίσυφος ΣΑΣ",
    "\u200b zero\u200bwidth \u200d joiner \ufeff bom",
    "numbers 1 12 123 1234 12345 3.14159 1,000,000",
    "12345678901234567890123456789012345678901234567890",
    "0000000 007 ٣٤٥ ૧૨૩ Ⅻ½",
    "tabs\tand\ttabs\t\t\tend",
    "mixed \t \n \r\n  whitespace \u000b\u000c\u0085 controls \u001c\u001d\u001e\u001f \u1680\u2028\u2029\u202f\u205f\u180e",
    "line one\nline two\r\nline three\n\n\nline six",
    "trailing newline\n", "\n\nleading newlines", "   \n\n   \t",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "code: def f(x):\n    return x**2  # comment\n\tif (a && b) { c++; }",
    "URL https://example.com/path?q=1&r=2#frag and email a.b@c.org",
    "price: $5.99, €10, £3, ¥100, 50% off!!!", "!!!???...,,,;;;:::", "@#$%^&*()_+-=[]{}|\\;':\",./<>?`~",
    "space runs:  2   3    4     5      6       7        8         9          10",
    "Special <|endoftext|> token", "<|endoftext|>", "<|endoftext|><|endoftext|>", "x<|endoftext|>y",
    "partial <|endof and <|endoftext", "<|padding|> pad",
    "<s>", "<s> hi </s>", "hi<s>there</s>", " <s>  x", "<unk> <pad>",
    "<|begin_of_text|>Hello<|eot_id|>", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<mask> masked  <mask>", "a<mask>b", "[SEP]next [SEP]  after", "the cat sat on the category of cats",
    "Cat CAT cat. cat_x", "The DOG and the dog", "dogma Dog!", "  Durrës  Durrës", "xDurrës",
    "Q: What is the capital of Albania?\nA: Durrës",
    "  Enrico Fermi was born in 1452.  His keen observational skills and insatiable curiosity",
]

# Pieces for random texts that probe the split regexes and added-token matching.
FUZZ_PIECES = [" ", " ", "  ", "   ", "\t", "\n", "\r", "\r\n", "\n\n", "\u00a0", "\u3000", "\u2028", "\x0b", "\x85",
               "a", "B", "zz", "word", "Word", "é", "e\u0301", "ſ", "'", "'s", "'S", "'ll", "'LL", "'re", "'Ve", "'m", "'d",
               "'t", "'ſ", "1", "23", "456", "7890", "٣", "½", ".", ",", "!", "?", "-", "_", "“", "”", "—", "😀", "👍🏽",
               "日本", "한", "\u1100\u1161", "\u0301", "<|endoftext|>", "<s>", "</s>", "<mask>", "[SEP]", "cat", "DOG",
               "Durrës", "▁", "Ġ", "<0x41>", "  \n ", "\t\n\t"]


def fuzz_texts(rng, count=80):
    return ["".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(1, 14))) for _ in range(count)]


WORDS = (
    "the of and to in is was for on that with as by at from his her it an are were be this which "
    "city capital country born famous artist painter scientist river mountain government border "
    "history university music novel physics chemistry emperor kingdom republic Europe Asia Africa "
    "Albania Tirana Durrës Paris London Berlin Zürich München São Paulo Łódź Kraków Reykjavík "
    "café naïve résumé coöperate façade jalapeño Ångström Fermi Leonardo Vinci Mona Lisa "
    "don't it's we'll I'm you've they're she'd can't won't I'll "
    "东京 日本 中国 北京 한국 서울 Москва Россия Αθήνα Ελλάδα القاهرة ישראל "
    "😀 🎉 👍 ❤️ ✔️ — – … “ ” ‘ ’ « » © ® ™ € £ ¥ % $ # @ & * + = / \\ | ( ) [ ] { } < > ! ? . , ; :"
).split()


def training_corpus(rng):
    lines = []
    for _ in range(4000):
        n = rng.randint(3, 25)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.08:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
            elif r < 0.1:
                parts.append(rng.choice(["  ", "\t", "   ", "\n"]) + rng.choice(WORDS))
            else:
                w = rng.choice(WORDS)
                if rng.random() < 0.15:
                    w = w.capitalize()
                parts.append(w)
        line = " ".join(parts)
        if rng.random() < 0.1:
            line = "  " + line
        lines.append(line + rng.choice([".", "!", "?", "", ","]))
    lines += HANDCRAFTED * 3
    return lines


def dataset_sample(rng):
    base = os.path.join(SHARED, "datasets", "context-parametric-inversion")
    if not os.path.isdir(base):
        print("note: no dataset at", base, "- the corpus has hand-written texts only", file=sys.stderr)
        return []
    files = []
    for name in ["world_facts.json", "country_capitals_only.json"]:
        with open(os.path.join(base, name), encoding="utf-8") as f:
            files.append((name, json.load(f)))
    with open(os.path.join(base, "famous_biographies.jsonl"), encoding="utf-8") as f:
        files.append(("famous_biographies.jsonl", [json.loads(l) for l in f if l.strip()]))
    texts = []
    for name, items in files:
        for item in rng.sample(items, 50):
            texts.append(item["context"])
            texts.append(item["question"])
    return texts


# --------------------------------------------------------------------------------------------
# Trained tokenizers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level_trainer(vocab, specials):
    return trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, show_progress=False, special_tokens=specials,
                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet())


def train_gpt2(lines):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(lines, byte_level_trainer(900, ["<|endoftext|>"]))
    return tok, None


def train_neox(lines):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.train_from_iterator(lines, byte_level_trainer(900, ["<|endoftext|>", "<|padding|>"]))
    # Like GPT-NeoX-20B: runs of spaces as (non-special, normalized) added tokens.
    tok.add_tokens([AddedToken(" " * n, normalized=True) for n in range(8, 1, -1)])
    return tok, None


def train_llama3(lines):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    tok.train_from_iterator(lines, byte_level_trainer(1000, specials))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "add_bos_token": True,
              "tokenizer_class": "PreTrainedTokenizerFast"}
    return tok, config


def train_qwen2(lines):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(lines, byte_level_trainer(900, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    config = {"eos_token": "<|im_end|>", "bos_token": None, "add_bos_token": False}
    return tok, config


def train_llama2(lines):
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Train on Metaspace words (merges never cross a word start), then switch to the Llama-2
    # pipeline: Prepend + Replace normalizers and no pre-tokenizer.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2, show_progress=False, limit_alphabet=120,
                                  special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens)
    tok.train_from_iterator(lines, trainer)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    j = json.loads(tok.to_str())
    # As in Llama-2: the byte tokens live in the model vocabulary only, not among added tokens.
    j["added_tokens"] = [t for t in j["added_tokens"] if t["content"] not in byte_tokens]
    for t in j["added_tokens"]:
        t["normalized"] = False
    tok = Tokenizer.from_str(json.dumps(j))
    config = {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False,
              "tokenizer_class": "LlamaTokenizer"}
    return tok, config


TRAINED = {
    "gpt2-style": train_gpt2,
    "neox-style": train_neox,
    "llama3-style": train_llama3,
    "qwen2-style": train_qwen2,
    "llama2-style": train_llama2,
}

SHARED_TOKENIZERS = ["gpt2", "gpt2-legacy-schema", "gpt-neox-20b", "llama-2", "mistral-7b-v0.1", "olmo2-dolma2"]

# --------------------------------------------------------------------------------------------
# Configurations: base + overrides


def bl(use_regex=False, add_prefix_space=False):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True, "use_regex": use_regex}


def split(pattern, behavior, invert=False, regex=True):
    return {"type": "Split", "pattern": {"Regex" if regex else "String": pattern}, "behavior": behavior, "invert": invert}


def seq(*pts):
    return {"type": "Sequence", "pretokenizers": list(pts)}


def norm_seq(*ns):
    return {"type": "Sequence", "normalizers": list(ns)}


LLAMA2_NORMALIZER = [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]


def variants(trained):
    """(name, base, overrides) for every configuration beyond the bases."""
    v = []
    # ByteLevel options.
    v.append(("gpt2-prefix-space", "gpt2-style", {"pre_tokenizer": bl(use_regex=True, add_prefix_space=True),
                                                  "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True}}))
    v.append(("gpt2-no-regex", "gpt2-style", {"pre_tokenizer": bl(use_regex=False)}))
    # Split: every behavior, with and without invert, on a pattern with adjacent matches.
    for behavior in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
        for invert in [False, True]:
            name = f"split-{behavior.lower()}{'-invert' if invert else ''}"
            v.append((name, "gpt2-style", {"pre_tokenizer": seq(split(r"\s|\d|[.,!?]", behavior, invert), bl())}))
    v.append(("split-string-merged-previous", "gpt2-style", {"pre_tokenizer": seq(split(" ", "MergedWithPrevious", regex=False), bl())}))
    v.append(("split-string-removed", "gpt2-style", {"pre_tokenizer": seq(split(", ", "Removed", regex=False), bl(use_regex=True))}))
    v.append(("split-lookahead-contiguous", "gpt2-style", {"pre_tokenizer": seq(split(r"\s+(?!\S)|\p{Lu}\p{Ll}*", "Contiguous"), bl())}))
    # Digits and Punctuation.
    v.append(("digits-individual-punct", "gpt2-style", {"pre_tokenizer": seq({"type": "Digits", "individual_digits": True},
                                                                               {"type": "Punctuation", "behavior": "Isolated"}, bl(use_regex=True))}))
    v.append(("digits-contiguous-punct-next", "gpt2-style", {"pre_tokenizer": seq({"type": "Digits", "individual_digits": False},
                                                                                    {"type": "Punctuation", "behavior": "MergedWithNext"}, bl())}))
    v.append(("whitespace-splits", "gpt2-style", {"pre_tokenizer": seq({"type": "WhitespaceSplit"}, bl())}))
    v.append(("whitespace-word", "gpt2-style", {"pre_tokenizer": seq({"type": "Whitespace"}, bl())}))
    # Normalizers that change length, on a byte-level model.
    v.append(("nfkc-lowercase", "gpt2-style", {"normalizer": norm_seq({"type": "NFKC"}, {"type": "Lowercase"})}))
    v.append(("nfd", "gpt2-style", {"normalizer": {"type": "NFD"}}))
    v.append(("nfkd-strip", "gpt2-style", {"normalizer": norm_seq({"type": "NFKD"}, {"type": "Strip", "strip_left": True, "strip_right": True})}))
    v.append(("replace-regex-prepend", "gpt2-style", {"normalizer": norm_seq(
        {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
        {"type": "Replace", "pattern": {"String": "Durrës"}, "content": "DURRES!"},
        {"type": "Prepend", "prepend": "<w>"})}))
    # Merges as "a b" strings instead of pairs.
    v.append(("gpt2-merges-strings", "gpt2-style", {"$merges_as_strings": True}))
    # Added tokens with every option, with a lowercasing normalizer so normalized matching matters.
    v.append(("added-token-options", "gpt2-style", {"normalizer": {"type": "Lowercase"}, "added_tokens": added_token_options(trained["gpt2-style"])}))
    v.append(("added-token-options-metaspace", "llama2-style", {"added_tokens": added_token_options(trained["llama2-style"])}))
    # ignore_merges off.
    v.append(("llama3-merges", "llama3-style", {"model.ignore_merges": False}))
    # Metaspace pre-tokenizer + decoder, each prepend scheme, split on/off.
    for scheme in ["first", "always", "never"]:
        for split_words in [True, False]:
            name = f"metaspace-{scheme}{'' if split_words else '-nosplit'}"
            v.append((name, "llama2-style", {
                "normalizer": None,
                "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split_words},
                "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split_words},
            }))
    v.append(("metaspace-legacy-add-prefix-space", "llama2-style", {
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True},
        "decoder": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True},
    }))
    # Unknown-token handling without byte fallback.
    v.append(("llama2-unk-fused", "llama2-style", {"model.byte_fallback": False}))
    v.append(("llama2-unk-unfused", "llama2-style", {"model.byte_fallback": False, "model.fuse_unk": False}))
    v.append(("llama2-nfkc-lowercase", "llama2-style", {"normalizer": norm_seq({"type": "NFKC"}, {"type": "Lowercase"}, *LLAMA2_NORMALIZER)}))
    return v


def added_token_options(base_json):
    """The base's added tokens plus new ones covering lstrip/rstrip/single_word/normalized/special."""
    out = [dict(t) for t in base_json["added_tokens"]]
    next_id = max([t["id"] for t in out] + [max(base_json["model"]["vocab"].values())]) + 1
    specs = [
        ("<mask>", dict(special=True, lstrip=True, rstrip=True, single_word=False, normalized=False)),
        ("[SEP]", dict(special=False, lstrip=False, rstrip=True, single_word=False, normalized=False)),
        ("cat", dict(special=False, lstrip=False, rstrip=False, single_word=True, normalized=True)),
        ("Durrës", dict(special=False, lstrip=True, rstrip=False, single_word=False, normalized=False)),
        ("DOG", dict(special=False, lstrip=False, rstrip=False, single_word=False, normalized=True)),
        ("dogma", dict(special=True, lstrip=False, rstrip=False, single_word=True, normalized=True)),
        ("  ", dict(special=False, lstrip=False, rstrip=False, single_word=False, normalized=True)),
    ]
    for content, opts in specs:
        if any(t["content"] == content for t in out):
            continue
        out.append(dict(id=next_id, content=content, **opts))
        next_id += 1
    return out


def apply_overrides(j, overrides):
    """Top-level keys or dotted paths replaced by the given values. The special key
    "$merges_as_strings" rewrites model.merges from [a, b] pairs to "a b" strings."""
    j = copy.deepcopy(j)
    for key, value in overrides.items():
        if key == "$merges_as_strings":
            j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
            continue
        parts = key.split(".")
        target = j
        for p in parts[:-1]:
            target = target[p]
        target[parts[-1]] = value
    return j


# --------------------------------------------------------------------------------------------
# Goldens


def fnv(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"[:12]  # 48 bits: plenty to detect any difference in a regression test


def encoding_hash(e):
    return fnv("".join(f"{i}\t{s}\t{t_end}\t{tok}\n" for i, (s, t_end), tok in zip(e.ids, e.offsets, e.tokens)))


def golden_cases(tok, texts, n_hand, full):
    """Per text. Keys left out mean "same as": ns/hs -> n/h, dh -> hash of the text (rt),
    dsh -> dh."""
    cases = []
    for k, text in enumerate(texts):
        plain = tok.encode(text, add_special_tokens=False)
        spec = tok.encode(text, add_special_tokens=True)
        dec = tok.decode(plain.ids, skip_special_tokens=False)
        dec_skip = tok.decode(spec.ids, skip_special_tokens=True)
        case = {"t": k, "n": len(plain.ids), "h": encoding_hash(plain)}
        if encoding_hash(spec) != case["h"]:
            case["ns"] = len(spec.ids)
            case["hs"] = encoding_hash(spec)
        case["rt"] = dec == text
        if not case["rt"]:
            case["dh"] = fnv(dec)
        if dec_skip != dec:
            case["dsh"] = fnv(dec_skip)
        if full and k < n_hand:
            case["ids"] = plain.ids
            case["offsets"] = [x for o in plain.offsets for x in o]
            case["tokens"] = plain.tokens
            if spec.ids != plain.ids:
                case["ids_s"] = spec.ids
                case["offsets_s"] = [x for o in spec.offsets for x in o]
                case["special_s"] = spec.special_tokens_mask
            if not case["rt"]:
                case["dec"] = dec
        cases.append(case)
    return cases


def decode_cases(tok, texts, n_hand):
    """decode() of id lists that are not plain encodings: cut, reversed, with an unknown id."""
    out = []
    for k in range(n_hand):
        ids = tok.encode(texts[k], add_special_tokens=True).ids
        if len(ids) < 3 or len(ids) > 40:
            continue
        for variant in (ids[1:], ids[:-1], list(reversed(ids)), ids + [10 ** 7]):
            for skip in (False, True):
                out.append({"ids": variant, "skip": skip, "text": tok.decode(variant, skip_special_tokens=skip)})
        if len(out) > 40:
            break
    return out


def main():
    if tokenizers.__version__ != EXPECTED_VERSION:
        sys.exit(f"tokenizers {tokenizers.__version__} installed; the goldens are pinned to {EXPECTED_VERSION}")
    rng = random.Random(20240611)
    lines = training_corpus(rng)
    os.makedirs(os.path.join(OUT, "goldens"), exist_ok=True)

    trained = {}
    for name, train in TRAINED.items():
        tok, config = train(lines)
        d = os.path.join(OUT, "trained", name)
        os.makedirs(d, exist_ok=True)
        j = json.loads(tok.to_str())
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
        if config is not None:
            with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
                json.dump(config, f, ensure_ascii=False, indent=1)
        trained[name] = j
        print(f"trained {name}: vocab {tok.get_vocab_size()}")

    dataset = dataset_sample(random.Random(7))
    fuzz = fuzz_texts(random.Random(11))
    texts = HANDCRAFTED + fuzz + dataset
    n_hand = len(HANDCRAFTED)
    n_fixed = n_hand + len(fuzz)
    with open(os.path.join(OUT, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump({"handcrafted": n_hand, "fuzz": len(fuzz), "texts": texts}, f, ensure_ascii=False, indent=0)

    configs = [(name, f"trained/{name}", {}, True) for name in TRAINED]
    configs += [(name, base_ref, ov, False) for name, base_ref, ov in
                [(n, f"trained/{b}", o) for n, b, o in variants(trained)]]
    shared_dir = os.path.join(SHARED, "tokenizers")
    for name in SHARED_TOKENIZERS:
        if os.path.exists(os.path.join(shared_dir, name, "tokenizer.json")):
            configs.append((f"shared-{name}", f"shared:{name}", {}, True))
        else:
            print("note: no", name, "in", shared_dir, file=sys.stderr)

    written = set()
    for name, base_ref, overrides, is_base in configs:
        if base_ref.startswith("shared:"):
            with open(os.path.join(shared_dir, base_ref[len("shared:"):], "tokenizer.json"), encoding="utf-8") as f:
                base_json = json.load(f)
        else:
            base_json = trained[base_ref[len("trained/"):]]
        j = apply_overrides(base_json, overrides)
        tok = Tokenizer.from_str(json.dumps(j))
        # Variants are checked on the hand-written and random texts and the first 20 dataset texts.
        these = texts if is_base else texts[: n_fixed + 20]
        golden = {
            "generator": "Tools/tokenizers/make_goldens.py",
            "tokenizers_version": tokenizers.__version__,
            "tokenizer": base_ref,
            "overrides": overrides,
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "cases": golden_cases(tok, these, n_hand, full=is_base),
            "decode_cases": decode_cases(tok, these, n_hand) if is_base else [],
        }
        path = os.path.join(OUT, "goldens", f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        written.add(f"{name}.json")
        print(f"golden {name}: {len(golden['cases'])} texts, {os.path.getsize(path)} bytes")
    for stale in set(os.listdir(os.path.join(OUT, "goldens"))) - written:
        os.remove(os.path.join(OUT, "goldens", stale))


if __name__ == "__main__":
    main()
