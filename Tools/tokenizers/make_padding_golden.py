#!/usr/bin/env python3
"""A tokenizer.json with `padding` and `truncation` sections, and the encodings cpiscope must give.

Writes Tests/Fixtures/tokenizers/padded/:
  tokenizer.json   trained/llama2-style with padding (fixed length 24, "</s>" on the right) and
                   truncation (max_length 8), as some published tokenizers carry them
  golden.json      per text: the ids/tokens/offsets of Python `tokenizers` after `no_padding()` and
                   `no_truncation()` (what cpiscope and transformers' default calls give), and the
                   ids that `Tokenizer.from_file(...).encode` gives with the sections applied (to show
                   that the file would really pad and truncate)

Rerun from the repository root: python3 Tools/tokenizers/make_padding_golden.py (tokenizers 0.23.3).
"""
import json
import os

import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
OUT = os.path.join(FIX, "padded")
TEXTS = ["Hello world", "The capital of Albania is Durrës, and its largest port is Durrës too.", ""]

assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
tok = Tokenizer.from_file(os.path.join(FIX, "trained", "llama2-style", "tokenizer.json"))
tok.enable_padding(length=24, pad_id=tok.token_to_id("</s>"), pad_token="</s>", direction="right")
tok.enable_truncation(max_length=8)
os.makedirs(OUT, exist_ok=True)
tok.save(os.path.join(OUT, "tokenizer.json"), pretty=False)

applied = Tokenizer.from_file(os.path.join(OUT, "tokenizer.json"))
plain = Tokenizer.from_file(os.path.join(OUT, "tokenizer.json"))
plain.no_padding()
plain.no_truncation()
golden = {"tokenizers": tokenizers.__version__, "texts": []}
for text in TEXTS:
    e = plain.encode(text)
    golden["texts"].append({
        "text": text, "ids": e.ids, "tokens": e.tokens, "offsets": [list(o) for o in e.offsets],
        "ids_with_sections_applied": applied.encode(text).ids,
    })
with open(os.path.join(OUT, "golden.json"), "w", encoding="utf-8") as f:
    json.dump(golden, f, ensure_ascii=False, indent=1)
    f.write("\n")
print("wrote", OUT)
