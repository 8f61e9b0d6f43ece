#!/usr/bin/env python3
"""Goldens for the ChatTemplate module (Sources/ChatTemplate): real chat templates rendered by transformers.

For every model folder under Tests/Fixtures/chat-templates/<family>/ (a tokenizer_config.json and/or a
chat_template.jinja, see SOURCES.md there), the folder is loaded by transformers' own
PreTrainedTokenizerBase._from_pretrained (transformers 5.24.0, tokenization_utils_base.py): the same code
that AutoTokenizer.from_pretrained runs for a local folder after it has found the files, so the choice between
chat_template.jinja, additional_chat_templates/*.jinja and the "chat_template" field (a string or a list of
{name, template}) and the special tokens passed to the template (special_tokens_map: bos/eos/unk/sep/pad/
cls/mask and the model-specific *_token keys) are transformers' own. No tokenizer vocabulary is needed:
apply_chat_template(tokenize=False) only renders.

Each template is rendered with apply_chat_template(conversation, tokenize=False, add_generation_prompt=...,
chat_template=<name or None>), which compiles it in transformers' environment
(utils/chat_template_utils.py, _cached_compile_jinja_template): jinja2's ImmutableSandboxedEnvironment with
trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker ({% generation %}), loopcontrols], the
tojson filter replaced by json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...), and the
globals raise_exception, strftime_now, dict and namespace; tools=None and documents=None are always passed.
strftime_now reads datetime.now(): the clock is frozen at FROZEN_NOW (naive local time) so that templates that
print today's date (Llama 3.2, Granite 3.3) give stable goldens; the Swift tests pass the same instant.

Conversations: one user message; system + user; user/assistant/user; system + user/assistant/user; and two
user messages in a row (which templates that enforce alternation refuse), each with add_generation_prompt
false and true; and, for the templates that print them, renders with tools, documents or another variable
(WITH_VARIABLES). A render that raises is recorded with the exception: kind "raise_exception" when the
template called raise_exception(msg) (jinja2.exceptions.TemplateError exactly; message verbatim), else
"error" with the Python exception type and message.

Also "synthetic" cases: small templates that pin jinja2 semantics the real templates rely on (whitespace
control, scoping, loop variables, filters, tests, string methods, tojson, printing of Python values,
undefined values, errors), rendered by the same compiled environment with the given variables; and
"random": 400 templates drawn from a small grammar (RANDOM_SEED) over variables of every type, a
differential test of the interpreter against jinja2 (text, or the Python type of the exception).

Rerun from the repository root:  python3 Tools/goldens/make_chat_template_goldens.py
Versions: Tools/requirements-chat-templates.txt.
"""
import copy
import datetime as _dt
import glob
import json
import os
import random
import sys

import jinja2
import transformers
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import chat_template_utils

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "chat-templates")

# 2024-07-26 09:05:03, a Friday (day 208 of a leap year): the date Llama 3.1's template hard-codes.
FROZEN_NOW = _dt.datetime(2024, 7, 26, 9, 5, 3)


class _FrozenDateTime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FROZEN_NOW


chat_template_utils.datetime = _FrozenDateTime  # strftime_now() looks the name up when it is called

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Réponds «brièvement» — no more than one line."}
USER1 = {"role": "user", "content": "  What is the capital of France?\nAnswer in one word.  "}
ASSISTANT = {"role": "assistant", "content": " Paris. "}
USER2 = {"role": "user", "content": "And of Japan? Use \"quotes\" and a tab:\there."}
CONVERSATIONS = {
    "user": [USER1],
    "system-user": [SYSTEM, USER1],
    "multi-turn": [USER1, ASSISTANT, USER2],
    "system-multi-turn": [SYSTEM, USER1, ASSISTANT, USER2],
    "user-user": [USER1, USER2],
}


class TemplateOnlyTokenizer(PreTrainedTokenizerBase):
    """The base class with no vocabulary: its added_tokens_decoder property is abstract in 5.24."""

    @property
    def added_tokens_decoder(self):
        return {}


# Tool and document renders, for the templates that print them (tools= and documents= of apply_chat_template).
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather «in a city».",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Tōkyō"},
        "days": {"type": "integer", "description": "How many days", "minimum": 1.5}},
        "required": ["city"]}}}]
DOCUMENTS = [{"doc_id": 1, "title": "Paris", "text": "Paris is the capital of France."}]
WITH_VARIABLES = {
    "command-r-plus": [{"tools": TOOLS}],
    "granite-3.3-instruct": [{"tools": TOOLS}, {"documents": DOCUMENTS}],
    "llama-3.1-instruct": [{"tools": TOOLS}],
    "llama-3.2-instruct": [{"tools": TOOLS}],
    "mistral-nemo-instruct": [{"tools": TOOLS}],
    "qwen2.5-instruct": [{"tools": TOOLS}],
    "qwen3": [{"tools": TOOLS}, {"enable_thinking": False}],
}


def load_tokenizer(folder):
    """transformers' own loading of a local folder, minus the vocabulary files."""
    files = {
        "tokenizer_config_file": os.path.join(folder, "tokenizer_config.json"),
        "chat_template_file": os.path.join(folder, "chat_template.jinja"),
        "special_tokens_map_file": os.path.join(folder, "special_tokens_map.json"),
        "added_tokens_file": None,
        "tokenizer_file": None,
    }
    for path in sorted(glob.glob(os.path.join(folder, "additional_chat_templates", "*.jinja"))):
        files["chat_template_" + os.path.basename(path)[: -len(".jinja")]] = path
    files = {k: (v if v is not None and os.path.isfile(v) else None) for k, v in files.items()}
    return TemplateOnlyTokenizer._from_pretrained(files, folder, {}, _is_local=True, local_files_only=True)


def outcome(fn):
    try:
        return {"text": fn()}
    except jinja2.exceptions.TemplateError as e:
        if type(e) is jinja2.exceptions.TemplateError:
            return {"error": {"kind": "raise_exception", "message": str(e)}}
        return {"error": {"kind": "error", "type": type(e).__name__, "message": str(e)}}
    except Exception as e:  # TypeError, ValueError, ZeroDivisionError... raised while rendering
        return {"error": {"kind": "error", "type": type(e).__name__, "message": str(e)}}


def template_names(tok):
    return sorted(tok.chat_template) if isinstance(tok.chat_template, dict) else ["default"]


def real_cases():
    out = []
    for family in sorted(os.listdir(FIXTURES)):
        folder = os.path.join(FIXTURES, family)
        if not os.path.isdir(folder):
            continue
        tok = load_tokenizer(folder)
        for name in template_names(tok):
            selector = name if isinstance(tok.chat_template, dict) else None
            for conv_name, conv in CONVERSATIONS.items():
                for agp in (False, True):
                    case = {"family": family, "template": name, "conversation": conv_name, "add_generation_prompt": agp}
                    case.update(outcome(lambda: tok.apply_chat_template(
                        [dict(m) for m in conv], tokenize=False, add_generation_prompt=agp, chat_template=selector)))
                    out.append(case)
            for variables in WITH_VARIABLES.get(family, []):
                for conv_name in ("user", "system-multi-turn"):
                    case = {"family": family, "template": name, "conversation": conv_name, "add_generation_prompt": True,
                            "variables": variables}
                    case.update(outcome(lambda: tok.apply_chat_template(
                        [dict(m) for m in CONVERSATIONS[conv_name]], tokenize=False, add_generation_prompt=True,
                        chat_template=selector, **variables)))
                    out.append(case)
        print(f"{family}: templates {template_names(tok)}, special tokens {tok.special_tokens_map}", file=sys.stderr)
    return out


def special_tokens():
    out = {}
    for family in sorted(os.listdir(FIXTURES)):
        folder = os.path.join(FIXTURES, family)
        if os.path.isdir(folder):
            tok = load_tokenizer(folder)
            out[family] = {"special_tokens": tok.special_tokens_map, "templates": template_names(tok)}
    return out


# (name, template, variables). Rendered by transformers' compiled environment with exactly these variables.
SYNTHETIC = [
    # whitespace control: trim_blocks, lstrip_blocks, -, +
    ("ws-trim-blocks", "{% if true %}\nyes\n{% endif %}\nafter", {}),
    ("ws-lstrip-blocks", "a\n    {% if true %}\n    b\n    {% endif %}\nc", {}),
    ("ws-lstrip-comment", "a\n  {# note #}\nb", {}),
    ("ws-variable-not-lstripped", "a\n    {{ 'x' }}\nb", {}),
    ("ws-minus-both", "a   \n  {%- if true -%}  \n  b  {%- endif -%}\n\n c", {}),
    ("ws-minus-variable", "a  \n {{- 'x' -}} \n b", {}),
    ("ws-plus", "a\n    {%+ if true %}b{% endif +%}\nc", {}),
    ("ws-trailing-newline-dropped", "x\n", {}),
    ("ws-crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\rd", {}),
    ("ws-start-of-template-lstrip", "   {% if true %}x{% endif %}", {}),
    ("ws-comment-trim", "a{# c #}\nb{#- c -#}  \n c", {}),
    ("ws-raw", "{% raw %}{{ x }}{% if %}{% endraw %}\nz", {}),
    ("ws-raw-minus", "a  {%- raw -%}  {{ y }}  {%- endraw -%}  b", {}),
    # printing Python values
    ("print-values", "{{ none }}|{{ true }}|{{ false }}|{{ 1 }}|{{ -0.0 }}|{{ 1.0 }}|{{ 2.5e-5 }}|{{ 1e16 }}|{{ 123456789.125 }}|{{ 1/3 }}|{{ 10/2 }}|{{ 7//2 }}|{{ -7//2 }}|{{ -7 % 3 }}|{{ 7.5 % 2 }}|{{ 2**10 }}|{{ 2**-1 }}", {}),
    ("print-containers", "{{ [1, 'a', none, true, 1.5, [\"x'y\"], {'k': 'v\\n'}] }}|{{ {'a': 1, 2: 'b'} }}|{{ (1,) }}|{{ () }}|{{ (1, 'x') }}|{{ 'tab\\there' }}", {}),
    ("print-repr-quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' and \"', 'back\\\\slash', 'é\\u200b\\x07'] }}", {}),
    ("print-dict-items", "{{ {'a': 1}.items() | list }}|{{ {'a': 1}.keys() | list }}|{{ {'a': [1]}.values() | list }}", {}),
    ("print-message", "{{ messages[0] }}|{{ messages }}", {"messages": [{"role": "user", "content": "hi"}]}),
    ("print-undefined", "[{{ nothing }}][{{ nothing is defined }}][{{ messages[5] }}][{{ messages[0].nope }}][{{ messages[0]['nope'] is defined }}]", {"messages": [{"role": "user"}]}),
    ("undefined-ops", "{{ nothing | length }}|{{ nothing == nothing }}|{{ nothing != 1 }}|[{{ nothing | string }}]|{{ nothing ~ 'x' }}|{% for x in nothing %}x{% endfor %}|{{ nothing is iterable }}|{{ not nothing }}|{{ nothing | list }}|{{ nothing | join(',') }}", {}),
    # literals and operators
    ("literals", "{{ 'a' 'b' \"c\" }}|{{ 1_000 }}|{{ 0x1F }}|{{ 0o17 }}|{{ 0b101 }}|{{ 1.5e3 }}|{{ True }}|{{ None }}|{{ 'x\\ty\\u00e9\\x41\\d' }}", {}),
    ("operators", "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ 3 - 5 }}|{{ -3 }}|{{ not 1 }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 5 }}|{{ 1 == 1.0 }}|{{ 'a' != 'b' }}|{{ 2 >= 2 }}|{{ 'abc' < 'abd' }}|{{ [1, 2] < [1, 3] }}", {}),
    ("and-or-values", "{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ '' and 'b' }}|{{ none or [] }}|{{ [] or {} }}|{{ 1 if 0 else 2 }}|[{{ 1 if 0 }}]", {}),
    ("in-operator", "{{ 'a' in 'cat' }}|{{ 'x' not in 'cat' }}|{{ 2 in [1, 2] }}|{{ 'k' in {'k': 1} }}|{{ 'v' in {'k': 'v'} }}|{{ 'a' in nothing }}", {}),
    ("precedence-tilde-plus", "{{ 'x' + 2 ~ 3 }}|{{ 'a' ~ 'b' * 2 }}|{{ -2 ** 2 }}|{{ 2 ** 3 ** 2 }}", {}),
    ("precedence-is-filter", "{{ 1 + 1 is odd }}|{{ not 1 is odd }}|{{ -3 | abs }}|{{ 'a' ~ 'b' | upper }}|{{ 'AB' | lower is string }}", {}),
    ("truthiness", "{% for v in [0, 1, '', 'a', [], [0], {}, {'a': 1}, none, 0.0, 0.1] %}{{ 'T' if v else 'F' }}{% endfor %}", {}),
    # subscripts and slicing
    ("slicing", "{{ 'abcdef'[1:3] }}|{{ 'abcdef'[::-1] }}|{{ [1,2,3,4][1:] }}|{{ [1,2,3,4][-2:] }}|{{ [1,2,3,4][:-1] }}|{{ [1,2,3,4,5][::2] }}|{{ [1,2,3,4,5][-1:0:-2] }}|{{ 'abc'[-1] }}|{{ 'abc'[10:] }}|{{ [1,2,3][5:1] }}|{{ 'héllo'[1] }}", {}),
    ("messages-slice", "{% for m in messages[1:] %}{{ m.role }};{% endfor %}{{ messages[-1]['content'] }}|{{ messages[0].content }}", {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
    ("dict-access", "{{ d.a }}|{{ d['a'] }}|{{ d.get('a') }}|{{ d.get('zz') }}|{{ d.get('zz', 'dflt') }}|{{ d['items'] }}|{{ d.keys()|list }}", {"d": {"a": 1, "items": "I"}}),
    # statements
    ("loop-vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}", {}),
    ("loop-filter-else", "{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }}/{{ loop.last }};{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] if false %}{% else %}filtered{% endfor %}", {}),
    ("loop-dict-and-string", "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}|{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}={{ v }};{% endfor %}|{% for c in 'héy' %}[{{ c }}]{% endfor %}|{% for k, v in {'x': 1} | items %}{{ k }}{{ v }}{% endfor %}", {}),
    ("loop-break-continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("loop-nested-loop-var", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %}", {}),
    ("loop-cycle-changed", "{% for i in [1, 1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(i) }}{{ loop.depth }}{% endfor %}", {}),
    ("scope-for-set", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }};{% endfor %}{{ x }}", {}),
    ("scope-for-read-before-set", "{% set x = 'outer' %}{% for i in [1, 2] %}{{ x }};{% set x = 'inner' ~ i %}{{ x }};{% endfor %}{{ x }}", {}),
    ("scope-if-set", "{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("scope-namespace", "{% set ns = namespace(count=0, found=false) %}{% for i in [1, 2, 3] %}{% set ns.count = ns.count + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }}{{ ns.found }}{{ ns.missing is defined }}", {}),
    ("scope-loop-var-leak", "{% for i in [1, 2] %}{% endfor %}[{{ i }}]", {}),
    # jinja2 decides each frame's variables when it compiles (idtracking.py): a name the top level assigns
    # directly, without reading it first, starts undefined there, hiding a variable of the same name
    ("scope-root-store-shadows-context", "{% for i in [1] %}[{{ s }}]{% endfor %}{% set s = 1 %}{{ s }}", {"s": "outer"}),
    ("scope-root-load-first", "{{ s }}{% set s = 1 %}{{ s }}", {"s": "outer"}),
    ("scope-root-store-in-branch", "{% for i in [1] %}[{{ s }}]{% endfor %}{% if true %}{% set s = 1 %}{% endif %}{{ s }}", {"s": "outer"}),
    ("scope-macro-sees-later-set", "{% macro m() %}[{{ s }}]{% endmacro %}{{ m() }}{% set s = 2 %}{{ m() }}", {"s": "outer"}),
    ("scope-nested-for-store", "{% for i in [1] %}{% for j in [1] %}{{ s }}{% endfor %}{% set s = 5 %}{{ s }}{% endfor %}{{ s }}", {"s": "outer"}),
    ("scope-set-block-is-a-frame", "{% set x %}{% set y = 1 %}{{ y }}{% endset %}[{{ x }}][{{ y }}]", {}),
    ("scope-macro-local-store", "{% macro m() %}[{{ t }}]{% set t = 1 %}[{{ t }}]{% endmacro %}{{ m() }}", {"t": "outer"}),
    ("set-tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d = [3, 4] %}{{ c }}{{ d }}", {}),
    ("set-block", "{% set body %}x{{ 1 + 1 }}y{% endset %}[{{ body }}]{{ body | length }}", {}),
    ("set-overrides-global", "{% set messages = messages[1:] %}{{ messages | length }}{% set add_generation_prompt = false %}{{ add_generation_prompt }}", {"messages": [1, 2, 3], "add_generation_prompt": True}),
    ("if-elif-else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %};{% endfor %}", {}),
    ("macro-basic", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }}|{{ greet('b', '?') }}|{{ greet(name='c', punct='.') }}|{{ greet('d') | upper }}", {}),
    ("macro-recursive", "{% macro down(n) %}{{ n }}{% if n > 0 %}{{ down(n - 1) }}{% endif %}{% endmacro %}{{ down(3) }}", {}),
    ("macro-sees-globals", "{% macro show() %}{{ bos_token }}{{ messages | length }}{% endmacro %}{{ show() }}", {"bos_token": "<s>", "messages": [1]}),
    ("macro-varargs-kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}", {}),
    ("call-block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner{{ 1 }}{% endcall %}", {}),
    ("call-block-args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}", {}),
    ("filter-block", "{% filter upper %}abc{{ 'd' }}{% endfilter %}", {}),
    ("generation-block", "a{% generation %}b{{ 1 }}{% endgeneration %}c", {}),
    ("with-block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    # tests
    ("tests", "{% for v in [none, 1, 1.5, 'a', [1], {'a': 1}, true, nothing] %}{{ v is defined }}{{ v is undefined }}{{ v is none }}{{ v is string }}{{ v is mapping }}{{ v is iterable }}{{ v is number }}{{ v is sequence }}{{ v is boolean }}{{ v is integer }}{{ v is float }}{{ v is true }}{{ v is false }};{% endfor %}", {}),
    ("tests-args", "{{ 3 is divisibleby 3 }}{{ 4 is divisibleby(3) }}{{ 1 is odd }}{{ 2 is even }}{{ 'a' is equalto 'a' }}{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 'a' is in 'abc' }}{{ false is sameas false }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ none is not none }}{{ x is not defined }}{{ range is callable }}", {}),
    # filters
    ("filters-string", "[{{ '  a b  ' | trim }}][{{ 'xxaxx' | trim('x') }}][{{ 'aBc' | upper }}][{{ 'aBc' | lower }}][{{ 'hello WORLD' | capitalize }}][{{ \"they're bill's-friends (from the UK)\" | title }}][{{ 'a-b-a' | replace('a', 'x') }}][{{ 'aaa' | replace('a', 'b', 2) }}][{{ 'abc' | length }}][{{ 'abc' | count }}][{{ 42 | string }}][{{ 'x' | safe }}]", {}),
    ("filters-list", "{{ [3, 1, 2] | first }}|{{ [3, 1, 2] | last }}|{{ [3, 1, 2] | join(', ') }}|{{ [1, 'a', none] | join }}|{{ 'abc' | list }}|{{ [1, 2] | length }}|{{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ [1, 2, 2, 1] | unique | list }}|{{ [1, 2, 3] | reverse | list }}|{{ 'abc' | reverse }}|{{ [1, 2, 3] | sum }}|{{ [4, 2, 8] | min }}|{{ [4, 2, 8] | max }}|{{ [] | first is defined }}", {}),
    ("filters-default", "[{{ nothing | default('d') }}][{{ none | default('d') }}][{{ '' | default('d') }}][{{ '' | default('d', true) }}][{{ nothing | d('x') }}][{{ 0 | default(5, boolean=true) }}][{{ nothing | default }}]", {}),
    ("filters-int-float", "{{ '42' | int }}|{{ '4.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ 3.9 | int }}|{{ '1.5' | float }}|{{ 2 | float }}|{{ 'x' | float }}|{{ -4 | abs }}|{{ 2.567 | round(1) }}|{{ 2.5 | round }}|{{ 2.567 | round(2, 'floor') }}", {}),
    ("filters-items-dictsort", "{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}|{% for k, v in d | dictsort %}{{ k }}{{ v }}{% endfor %}|{{ nothing | items | list }}", {"d": {"b": 2, "a": 1}}),
    ("filters-map-select", "{{ msgs | map(attribute='role') | join(',') }}|{{ msgs | selectattr('role', 'equalto', 'user') | list | length }}|{{ msgs | rejectattr('role', 'equalto', 'user') | map(attribute='content') | list }}|{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('odd') | list }}|{{ ['a', 'B'] | map('upper') | list }}|{{ msgs | selectattr('tool') | list }}|{{ msgs | map(attribute='missing', default='-') | join }}", {"msgs": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "v", "tool": 1}]}),
    ("filters-indent-wordcount", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'one two  three' | wordcount }}|{{ 'abc' | center(7) }}|{{ 'a b' | urlencode }}", {}),
    ("filters-batch-slice", "{{ [1,2,3,4,5] | batch(2) | list }}|{{ [1,2,3,4,5] | batch(2, 0) | list }}", {}),
    ("tojson-transformers", "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ [] | tojson(indent=2) }}|{{ {} | tojson(indent=2) }}|{{ 'é<\"/>&\\n' | tojson }}|{{ d | tojson(sort_keys=true) }}|{{ d | tojson(separators=(',', ':')) }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ [1.0, 2.5, none, true] | tojson }}|{{ (1, 2) | tojson }}|{{ d | tojson(indent='\\t') }}", {"d": {"b": [1, {"c": None}], "a": "x"}}),
    ("tojson-tools", "{% for t in tools %}{{ t | tojson(indent=4) }}\n{% endfor %}", {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather «now»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Tōkyō"]}, "days": {"type": "integer", "minimum": 1.5}}, "required": ["city"]}}}]}),
    # string methods
    ("str-methods", "[{{ '  a  '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '  a  '.lstrip() }}][{{ '  a  '.rstrip() }}][{{ 'a\\n\\n'.rstrip('\\n') }}][{{ 'abc'.startswith('ab') }}][{{ 'abc'.startswith(('x', 'a')) }}][{{ 'abc'.endswith('bc') }}][{{ 'a,b,,c'.split(',') }}][{{ ' a  b '.split() }}][{{ 'a b c'.split(' ', 1) }}][{{ 'a<think>b</think>c'.split('</think>')[-1] }}][{{ 'a b c'.rsplit(' ', 1) }}][{{ \"hello wORLD it's\".title() }}][{{ 'aB'.upper() }}][{{ 'aB'.lower() }}][{{ 'aB'.capitalize() }}][{{ 'aXbX'.replace('X', '-') }}][{{ 'abcabc'.find('c') }}][{{ 'abcabc'.rfind('c') }}][{{ 'abcabc'.count('bc') }}][{{ '-'.join(['a', 'b']) }}][{{ 'l1\\nl2\\r\\nl3'.splitlines() }}][{{ '12'.isdigit() }}][{{ 'ab'.isalpha() }}][{{ '  '.isspace() }}][{{ 'prefix-x'.removeprefix('prefix-') }}][{{ 'x.json'.removesuffix('.json') }}][{{ '{} and {}'.format('a', 1) }}][{{ '{0}{1}{0}'.format('a', 'b') }}][{{ '{name}!'.format(name='n') }}][{{ 'ab'.zfill(4) }}][{{ 'a'.ljust(3) }}|][{{ 'a'.rjust(3) }}]", {}),
    ("str-unicode-ws", "[{{ '\\u00a0\\u2003a\\u3000' | trim }}][{{ '\\x1c a \\x1f'.strip() }}][{{ 'Straße'.upper() }}][{{ 'ǅ'.lower() }}]", {}),
    ("list-methods", "{{ [1, 2, 1].count(1) }}|{{ ['a', 'b'].index('b') }}", {}),
    ("globals", "{{ range(3) | list }}|{{ range(1, 7, 2) | list }}|{{ range(5, 0, -2) | list }}|{{ dict(a=1, b='x') }}|{{ namespace(a=1).a }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %a %A %b %B %d %e %j %p %I %y %%') }}", {}),
    ("string-percent-format", "{{ '%s is %d years' % ('Al', 3) }}|{{ '%s!' % 'x' }}|{{ '%.2f' % 1.234 }}|{{ '%05d|%-4s|%x' % (42, 'ab', 255) }}", {}),
    # more edge cases of whitespace, scoping and printing
    ("ws-lstrip-tabs-and-text", "x\n\t \t{% if true %}y{% endif %}\nz {% if true %}w{% endif %}\n  {{- 'v' }}", {}),
    ("ws-block-at-start-minus", "{%- if true -%}\n  a\n{%- endif -%}\n", {}),
    ("ws-nested-indented", "{% for m in ms %}\n    {% if m %}\n        [{{ m }}]\n    {% endif %}\n{% endfor %}\n", {"ms": [1, 0, 2]}),
    ("ws-literal-braces", "{{ '{{' }}x{{ '}}' }}|{{ '{%' }}|{{ {'a': {'b': 1}} }}", {}),
    ("ws-comment-multiline", "a{#\n multi\n line\n#}\nb", {}),
    ("loop-outer-after-inner", "{% for a in [1, 2] %}{% for b in [3] %}{% endfor %}{{ loop.index }}{{ loop.last }};{% endfor %}", {}),
    ("loop-previtem-printed", "{% for x in [[1], 'b'] %}{{ loop.previtem }}/{{ loop.nextitem }};{% endfor %}", {}),
    ("loop-set-in-if-in-for", "{% set ns = namespace(out='') %}{% for m in ms %}{% if m.role == 'user' %}{% set text = m.content | upper %}{% set ns.out = ns.out ~ text %}{% endif %}{% endfor %}{{ ns.out }}|{{ text }}", {"ms": [{"role": "user", "content": "a"}, {"role": "x", "content": "b"}, {"role": "user", "content": "c"}]}),
    ("loop-unpack-list-of-pairs", "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }};{% endfor %}", {}),
    ("loop-over-tuple-literal", "{% for x in 1, 'a' %}{{ x }}{% endfor %}", {}),
    ("macro-default-uses-param", "{% macro m(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ m(3) }}|{{ m(3, 1) }}", {}),
    ("macro-missing-param", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{% endmacro %}{{ m(1) }}", {}),
    ("macro-returns-string", "{% macro m() %}  x  {% endmacro %}[{{ m() | trim }}]{{ m() | length }}", {}),
    ("set-block-filter", "{% set x | upper %}abc{{ 1 }}{% endset %}{{ x }}", {}),
    ("set-dict-literal", "{% set d = {'b': 1, 'a': 2, 'b': 3} %}{{ d }}|{{ d | length }}|{{ d.keys() | list }}", {}),
    ("conditional-no-else", "[{{ 'x' if false }}][{{ ('x' if false) is defined }}]", {}),
    ("selectattr-first", "{{ (ms | selectattr('role', 'equalto', 'system') | list | first).content }}|{{ ms | selectattr('role', 'eq', 'user') | map(attribute='content') | join('+') }}", {"ms": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"}, {"role": "user", "content": "u2"}]}),
    ("floats-in-containers", "{{ [1e-07, 3.14, 1e22, -2.5, 100.0, 0.1 + 0.2] }}|{{ [1e-07, 1e22, 0.1 + 0.2] | tojson }}|{{ 5 / 2 }}|{{ -7.5 // 2 }}|{{ -7.5 % 2 }}|{{ 7 % -3 }}|{{ 2 ** 0.5 }}", {}),
    ("unicode-compare-len", "{{ 'é' < 'z' }}|{{ 'Z' < 'a' }}|{{ 'e\u0301' | length }}|{{ 'e\u0301' == 'é' }}|{% for c in 'e\u0301x' %}[{{ c }}]{% endfor %}", {}),
    ("in-list-of-dicts", "{{ {'a': 1} in [{'a': 1}] }}|{{ 'a' in ['a', 'b'] }}|{{ 1.0 in [1] }}|{{ none in [none] }}", {}),
    ("length-of-dict-and-string-methods", "{{ {'a': 1, 'b': 2} | length }}|{{ 'a b c d'.split(' ', 2) }}|{{ 'a,b'.split(',', 0) }}|{{ '  x  y  '.split(none, 1) }}", {}),
    ("format-filter", "{{ '%s-%s' | format('a', 1) }}|{{ '%(x)s!' | format(x='y') }}", {}),
    ("print-namespace-and-callables", "{{ namespace(a=1) }}", {}),
    ("is-defined-nested", "{{ m.tool_calls is defined }}|{{ m['content'] is string }}|{{ m.content is not none }}|{{ tools is none }}|{{ tools is not defined }}", {"m": {"content": "x"}, "tools": None}),
    ("not-in-and-chained", "{{ 'x' not in ['a'] and 1 < 2 <= 2 != 3 }}|{{ not 'x' in 'xyz' }}", {}),
    ("math-on-bools", "{{ true + true }}|{{ true * 3 }}|{{ -true }}|{{ 'ab'[true] }}", {}),
    ("string-concat-plus", "{{ 'a' + 'b' ~ 'c' }}|{{ ('x' ~ 1) + 'y' }}", {}),
    ("escapes-in-literals", "{{ 'a\\nb' }}|{{ \"q'q\" }}|{{ 'q\\'q' }}|{{ '\\101\\x42\\u0043' }}|{{ 'tab\\tend' | length }}", {}),
    ("error-unknown-filter", "{{ x | frobnicate }}", {}),
    ("error-unknown-tag", "{% frobnicate %}", {}),
    ("error-unclosed-if", "{% if true %}open", {}),
    ("error-unclosed-variable", "{{ x ", {}),
    ("error-unknown-test", "{{ x is frobnicated }}", {}),
    ("error-endfor-without-for", "{% endfor %}", {}),
    # errors
    ("error-raise", "before{{ raise_exception('Only user and assistant roles are supported!') }}after", {}),
    ("error-raise-in-macro", "{% macro check(x) %}{% if x %}{{ raise_exception('bad: ' ~ x) }}{% endif %}{% endmacro %}{{ check('') }}{{ check('v') }}", {}),
    ("error-undefined-attr", "{{ nothing.attr }}", {}),
    ("error-undefined-add", "{{ nothing + 1 }}", {}),
    ("error-undefined-call", "{{ nothing() }}", {}),
    ("error-str-plus-int", "{{ 'a' + 1 }}", {}),
    ("error-zero-division", "{{ 1 // 0 }}", {}),
    ("error-not-iterable", "{% for x in 5 %}{% endfor %}", {}),
    ("error-none-iterable", "{% for x in none %}{% endfor %}", {}),
    ("error-compare-types", "{{ 'a' < 1 }}", {}),
    ("error-unsafe-append", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("error-namespace-underscore", "{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    ("error-range-too-big", "{{ range(200000) | length }}", {}),
    ("error-tojson-undefined", "{{ nothing | tojson }}", {}),
    ("error-set-attr-on-dict", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("error-int-overflow-safe", "{{ 2 ** 62 }}|{{ 9223372036854775807 }}", {}),
]


KITCHEN_SINK = os.path.join(ROOT, "Tests", "Fixtures", "fuzz-corpus", "chat-template", "kitchen-sink.jinja")


def synthetic_cases():
    out = []
    with open(KITCHEN_SINK, encoding="utf-8") as f:
        kitchen = f.read()
    kitchen_vars = {"messages": [SYSTEM, USER1, ASSISTANT, USER2, {"role": "tool", "content": "t"}], "tools": None,
                    "bos_token": "<s>", "add_generation_prompt": True}
    for name, source, variables in SYNTHETIC + [("kitchen-sink (fuzz seed)", kitchen, kitchen_vars)]:
        case = {"name": name, "source": source, "variables": variables}
        def render():
            return chat_template_utils._compile_jinja_template(source).render(**variables)
        try:
            case.update(outcome(render))
        except jinja2.exceptions.TemplateSyntaxError as e:  # (outcome catches it first; kept for clarity)
            case["error"] = {"kind": "error", "type": type(e).__name__, "message": str(e)}
        out.append(case)
    return out


# Random templates (a small grammar over the constructs chat templates use, with variables of every type),
# rendered by the same environment: differential cases between jinja2 and the Swift interpreter. Cases whose
# text jinja2 cannot reproduce (a generator's memory address) or that need values the interpreter does not
# model (markupsafe's Markup inside a container, complex numbers) are skipped.
RANDOM_SEED = 20240726
RANDOM_COUNT = 400
RANDOM_VARS = {"msgs": [{"role": "system", "content": " Sys é "}, {"role": "user", "content": "Hi, there"}, {"role": "assistant", "content": "Yo"},
                 {"role": "user", "content": "", "tool_calls": [{"name": "f", "arguments": {"a": 1}}]}],
        "s": "  Hello, World é  ", "n": 7, "f": 2.5, "d": {"b": 2, "a": 1, "c": None}, "l": [3, 1, 2, 1], "e": [], "z": 0,
        "words": ["b", "A", "c"], "t": None, "nested": {"x": {"y": [1, {"z": "deep"}]}}}
ATOMS = ["1", "0", "-3", "2.5", "1e-5", "0.1", "100", "''", "'a'", "'Hello World'", "'  x '", "'é'", "'a,b'", "none", "true", "false",
         "[]", "[1, 2]", "['a', 'B']", "{}", "{'k': 1}", "msgs", "s", "n", "f", "d", "l", "e", "z", "words", "t", "nothing", "nested",
         "msgs[0]", "msgs[-1]", "d.a", "d['b']", "nested.x.y", "(1, 'a')", "msgs[1].content", "s[2:7]", "l[::-1]", "words[1]"]
FILTERS = ["length", "upper", "lower", "trim", "first", "last", "list", "join(',')", "join", "default('x')", "default('x', true)", "tojson",
           "tojson(indent=2)", "items", "string", "int", "float", "abs", "round", "round(1)", "sort", "unique", "reverse", "title", "capitalize",
           "replace('a', 'b')", "select('odd')", "reject('even')", "map('upper')", "selectattr('role', 'equalto', 'user')",
           "rejectattr('role', 'equalto', 'user')", "map(attribute='role')", "indent(2)", "center(9)", "wordcount", "sum", "min", "max",
           "dictsort", "batch(2)", "e", "count", "d", "list | length", "trim('x')", "safe", "format(1)", "sort(reverse=true)", "tojson(sort_keys=true)"]
TESTS = ["defined", "undefined", "none", "string", "number", "mapping", "iterable", "sequence", "odd", "even", "divisibleby(2)", "divisibleby 3",
         "in [1, 'a']", "equalto 1", "lower", "upper", "true", "false", "integer", "float", "boolean", "callable", "eq 'a'", "gt 1", "le 2"]
METHODS = [".strip()", ".upper()", ".lower()", ".split()", ".split(',')", ".startswith('H')", ".endswith('é  ')", ".replace('l', 'L')",
           ".title()", ".capitalize()", ".lstrip()", ".rstrip()", ".get('a')", ".get('zz', 5)", ".items()", ".keys()", ".values()",
           ".count('l')", ".find('o')", ".index(1)", ".join(['x', 'y'])", ".format(1)", ".isdigit()", ".zfill(5)", ".split(' ', 1)", ".rsplit(',', 1)"]

BINOPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]


def expr(rng, depth):
    r = rng.random()
    if depth <= 0 or r < 0.25:
        return rng.choice(ATOMS)
    if r < 0.40:
        return f"{expr(rng, depth-1)} {rng.choice(BINOPS)} {expr(rng, depth-1)}"
    if r < 0.52:
        return f"{expr(rng, depth-1)} | {rng.choice(FILTERS)}"
    if r < 0.60:
        return f"{expr(rng, depth-1)} is {rng.choice(['', 'not '])}{rng.choice(TESTS)}"
    if r < 0.70:
        return f"({expr(rng, depth-1)}){rng.choice(METHODS)}"
    if r < 0.76:
        return f"{rng.choice(['not ', '-'])}{expr(rng, depth-1)}"
    if r < 0.82:
        return f"({expr(rng, depth-1)} if {expr(rng, depth-1)} else {expr(rng, depth-1)})"
    if r < 0.88:
        idx = rng.choice(['0', '-1', '1:', ':2', '::-1', "'role'", "'a'", '5'])
        return f"({expr(rng, depth-1)})[{idx}]"
    if r < 0.94:
        return f"[{expr(rng, depth-1)}, {expr(rng, depth-1)}]"
    return f"({expr(rng, depth-1)})"


def stmt(rng, depth):
    r = rng.random()
    if depth <= 0 or r < 0.45:
        return "{{ " + expr(rng, 2) + " }}" + rng.choice(["", "|", "\n", " "])
    if r < 0.6:
        body = "".join(stmt(rng, depth-1) for _ in range(rng.randint(1, 3)))
        var = rng.choice(["x", "m", "c"])
        src = rng.choice(["msgs", "l", "s", "d", "words", "e", "d.items()", "range(3)", "nothing", "msgs[1:]"])
        filt = rng.choice(["", f" if {var}", f" if loop is defined"]) if rng.random() < 0.3 else ""
        els = "{% else %}E" if rng.random() < 0.2 else ""
        ws = rng.choice(["", "-"])
        return "{%" + ws + f" for {var} in {src}{filt} " + ws + "%}" + rng.choice(["", "\n  "]) + body + "{{ loop.index }}{{ loop.last }}" + els + "{% endfor %}" + rng.choice(["", "\n"])
    if r < 0.75:
        body = "".join(stmt(rng, depth-1) for _ in range(rng.randint(1, 2)))
        return "{% if " + expr(rng, 2) + " %}" + body + ("{% elif " + expr(rng, 1) + " %}B" if rng.random() < 0.3 else "") + ("{% else %}" + stmt(rng, depth-1) if rng.random() < 0.4 else "") + "{% endif %}"
    if r < 0.85:
        v = rng.choice(["x", "y", "s", "n"])
        return "{% set " + v + " = " + expr(rng, 2) + " %}{{ " + v + " }}"
    if r < 0.95:
        return "{% set ns = namespace(v=" + expr(rng, 1) + ") %}{% for i in l %}{% set ns.v = " + expr(rng, 1).replace("nothing", "ns.v") + " %}{% endfor %}{{ ns.v }}"
    return "{% macro mm(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ mm(" + expr(rng, 1) + ") }}"


def random_cases():
    rng = random.Random(RANDOM_SEED)
    out = []
    while len(out) < RANDOM_COUNT:
        source = "".join(stmt(rng, 2) for _ in range(rng.randint(1, 3)))
        case = {"source": source}
        case.update(outcome(lambda: chat_template_utils._compile_jinja_template(source).render(**copy.deepcopy(RANDOM_VARS))))
        text = case.get("text", "") + case.get("error", {}).get("message", "")
        if " at 0x" in text or "Markup(" in text or "complex" in text or "0X" in text:
            continue
        if "error" in case and sum(1 for c in out if "error" in c) >= RANDOM_COUNT // 3:
            continue  # most random templates fail somewhere; keep two thirds that render
        out.append(case)
    return out


def main():
    goldens = {
        "generator": "Tools/goldens/make_chat_template_goldens.py",
        "versions": {"transformers": transformers.__version__, "jinja2": jinja2.__version__},
        "frozen_now": FROZEN_NOW.isoformat(),
        "conversations": CONVERSATIONS,
        "folders": special_tokens(),
        "cases": real_cases(),
        "synthetic": synthetic_cases(),
        "random_variables": RANDOM_VARS,
        "random": random_cases(),
    }
    path = os.path.join(FIXTURES, "goldens.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1, sort_keys=False)
        f.write("\n")
    raised = sum(1 for c in goldens["cases"] if "error" in c)
    print(f"wrote {path}: {len(goldens['cases'])} renders ({raised} raise), {len(goldens['synthetic'])} synthetic", file=sys.stderr)


if __name__ == "__main__":
    main()
