"""One scanner per file format. Each takes (path, text) and returns a ``FileScan``; none executes anything.

YAML, JSON and TOML become one small tree (``Node``) with the line of every value, walked by one function,
so the rules (key names, nesting as role context, a sibling ``model`` key, env sections) are the same in
all three.
"""

from __future__ import annotations

import bisect
import json
import json.decoder
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from core.markdown import closes_fence, fence_opening
from pipeline.audit.collect import ENV_NAME, MODEL_KEYS, Collector, FileScan, Value, model_name, parse_text
from pipeline.audit.defaults import DEFAULTS
from pipeline.audit.findings import match_param
from pipeline.audit.shell import scan_argv, scan_shell, tokens_of

MAX_NODES = 200_000  # per file, after alias expansion ("billion laughs" YAML stops here)
_FLAG_IN_TEXT = re.compile(
    r"(^|\s)--[a-z_-]*(temp|top[-_]?[pk]|min[-_]p|repe|seed|ctx|max[-_]tokens|predict)", re.IGNORECASE
)


@dataclass
class Node:
    """A value in a config tree with its 1-based line. ``items`` for mappings: (key, node, note)."""

    kind: str  # "map" | "seq" | "scalar"
    line: int
    value: Any = None  # scalars: the Python value
    items: list[tuple[str, Node, str]] = field(default_factory=list)
    seq: list[Node] = field(default_factory=list)
    text: bool = False  # scalar was a string (may hold "${VAR}", a command line, "NAME=value")
    block: bool = False  # a YAML block scalar: its content starts on the next line
    note: str = ""  # "via *defaults (line 3)" when the value came through a YAML alias or merge


class TooComplex(Exception):
    pass


# ---------------------------------------------------------------------------------------------- YAML
class _AnchorLoader(yaml.SafeLoader):
    """SafeLoader that remembers anchor names on nodes, so a merged value can say "via *defaults"."""

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        event = self.peek_event()
        anchor = None if isinstance(event, yaml.AliasEvent) else getattr(event, "anchor", None)
        node = super().compose_node(parent, index)
        if anchor:
            node.ssd_anchor = anchor
        return node


class _YamlWalk:
    """Converts composed YAML nodes, expanding aliases and ``<<`` merges with a note on what came from where."""

    def __init__(self) -> None:
        self.count = 0
        self.defined: set[int] = set()  # anchored nodes already met: a second sighting is an alias use

    def convert(self, node: yaml.Node, stack: frozenset[int] = frozenset(), note: str = "") -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise TooComplex("yaml expands to too many nodes")
        line = node.start_mark.line + 1
        if id(node) in stack:  # a recursive alias: stop rather than loop
            return Node("scalar", line, None)
        anchor = getattr(node, "ssd_anchor", None)
        if anchor:
            if id(node) in self.defined:
                note = f"via *{anchor}"
            self.defined.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            return Node(
                "scalar",
                line,
                _yaml_scalar(node),
                note=note,
                text=node.tag.endswith(":str"),
                block=node.style in ("|", ">"),
            )
        stack = stack | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return Node("seq", line, note=note, seq=[self.convert(child, stack, note) for child in node.value])
        local: list[tuple[str, Node, str]] = []
        merged: list[tuple[str, Node, str]] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(self.convert(source, stack, note).items)
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            child = self.convert(value_node, stack, note)
            local.append((key, child, child.note))
        local_keys = {k for k, _, _ in local}
        taken: set[str] = set()
        for key, value, via in merged:  # local keys win over merged ones; earlier merges over later ones
            if key not in local_keys and key not in taken:
                taken.add(key)
                local.append((key, value, via))
        return Node("map", line, items=local, note=note)


def yaml_tree(text: str) -> list[Node]:
    walk = _YamlWalk()
    return [walk.convert(doc) for doc in yaml.compose_all(text, Loader=_AnchorLoader) if doc is not None]


def _yaml_scalar(node: yaml.ScalarNode) -> Any:
    tag, raw = node.tag, node.value
    try:
        if tag.endswith(":int"):
            return int(raw.replace("_", ""), 0) if raw.lower().startswith(("0x", "0o")) else int(raw.replace("_", ""))
        if tag.endswith(":float"):
            return (
                float(raw.replace("_", ""))
                if not raw.lower().endswith(("inf", "nan"))
                else float(raw.lower().lstrip("+").replace(".", ""))
            )
    except ValueError:
        return raw
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        return raw.lower() in ("true", "yes", "on", "y")
    return raw


# ---------------------------------------------------------------------------------------------- JSON
class _JsonReader:
    """A small JSON reader that keeps the line of every value (the json module gives no positions)."""

    _WS = re.compile(r"[ \t\n\r]*")

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.count = 0

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def parse(self) -> Node:
        node, end = self.value(self._WS.match(self.text, 0).end())
        if self._WS.match(self.text, end).end() != len(self.text):
            raise ValueError("extra data after the JSON value")
        return node

    def value(self, pos: int, depth: int = 0) -> tuple[Node, int]:
        self.count += 1
        if self.count > MAX_NODES or depth > 500:
            raise TooComplex("json too large or too deep")
        char = self.text[pos : pos + 1]
        line = self.line(pos)
        if char == "{":
            node, pos = Node("map", line), self._WS.match(self.text, pos + 1).end()
            if self.text[pos : pos + 1] == "}":
                return node, pos + 1
            while True:
                if self.text[pos : pos + 1] != '"':
                    raise ValueError(f"expected a key at line {self.line(pos)}")
                key, pos = json.decoder.scanstring(self.text, pos + 1)
                pos = self._WS.match(self.text, pos).end()
                if self.text[pos : pos + 1] != ":":
                    raise ValueError(f"expected ':' at line {self.line(pos)}")
                child, pos = self.value(self._WS.match(self.text, pos + 1).end(), depth + 1)
                node.items.append((key, child, ""))
                pos = self._WS.match(self.text, pos).end()
                if self.text[pos : pos + 1] == ",":
                    pos = self._WS.match(self.text, pos + 1).end()
                    continue
                if self.text[pos : pos + 1] == "}":
                    return node, pos + 1
                raise ValueError(f"expected ',' or '}}' at line {self.line(pos)}")
        if char == "[":
            node, pos = Node("seq", line), self._WS.match(self.text, pos + 1).end()
            if self.text[pos : pos + 1] == "]":
                return node, pos + 1
            while True:
                child, pos = self.value(pos, depth + 1)
                node.seq.append(child)
                pos = self._WS.match(self.text, pos).end()
                if self.text[pos : pos + 1] == ",":
                    pos = self._WS.match(self.text, pos + 1).end()
                    continue
                if self.text[pos : pos + 1] == "]":
                    return node, pos + 1
                raise ValueError(f"expected ',' or ']' at line {self.line(pos)}")
        if char == '"':
            text, end = json.decoder.scanstring(self.text, pos + 1)
            return Node("scalar", line, text, text=True), end
        for literal, result in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(literal, pos):
                return Node("scalar", line, result), pos + len(literal)
        match = json.scanner.NUMBER_RE.match(self.text, pos)
        if not match:
            raise ValueError(f"unexpected character at line {line}")
        integer, frac, exp = match.groups()
        number = float(integer + (frac or "") + (exp or "")) if frac or exp else int(integer)
        return Node("scalar", line, number), match.end()


# ---------------------------------------------------------------------------------------------- TOML
def toml_tree(text: str) -> Node:
    data = tomllib.loads(text)
    lines = text.splitlines()
    headers: list[tuple[int, tuple[str, ...]]] = []
    for number, raw in enumerate(lines, start=1):
        match = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", raw)
        if match:
            headers.append((number, tuple(p.strip().strip("\"'") for p in match.group(1).split("."))))

    def find_line(table: tuple[str, ...], key: str) -> int:
        pattern = re.compile(r"(^|[\s{,.])[\"']?" + re.escape(key) + r"[\"']?\s*=")
        start = 0
        for number, header in headers:  # the last header that is a prefix of the table path
            if table[: len(header)] == header and header:
                start = number
        for number in range(start + 1, len(lines) + 1):
            if pattern.search(lines[number - 1]):
                return number
        for number in range(1, len(lines) + 1):
            if pattern.search(lines[number - 1]):
                return number
        return start or 1

    def build(value: Any, table: tuple[str, ...], line: int) -> Node:
        if isinstance(value, dict):
            node = Node("map", line)
            for key, child in value.items():
                node.items.append((key, build(child, (*table, key), find_line(table, key)), ""))
            return node
        if isinstance(value, list):
            return Node("seq", line, seq=[build(child, table, line) for child in value])
        return Node("scalar", line, value, text=isinstance(value, str))

    return build(data, (), 1)


# ---------------------------------------------------------------------------------------------- walker
def _scalar_value(node: Node) -> Value:
    if node.kind == "seq":
        values = [child.value for child in node.seq if child.kind == "scalar"]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return Value(values, note="a list of values (a sweep?)")
        return Value("?")
    if node.text:
        return parse_text(str(node.value))
    if isinstance(node.value, bool):
        return Value("bool")
    return Value(node.value)


def walk_tree(
    col: Collector,
    node: Node,
    keypath: tuple[str, ...] = (),
    model: str | None = None,
    param_parent: str | None = None,
    env_section: bool = False,
) -> None:
    """Report every sampling key in a tree; the key path is the role context, innermost first."""
    if node.kind == "seq":
        _scan_string_list(col, node, keypath, model)
        for index, child in enumerate(node.seq):
            walk_tree(col, child, (*keypath, f"[{index}]"), model, param_parent, env_section)
        return
    if node.kind == "scalar":
        if node.text and isinstance(node.value, str):
            _scan_string(col, node, keypath, model, env_section)
        return
    for key, child, _note in node.items:
        if (
            key.lower() in MODEL_KEYS
            and key.lower() != "from"
            and child.kind == "scalar"
            and isinstance(child.value, str)
            and child.value
        ):
            model = model_name(child.value)
    group = (keypath, node.line)
    for key, child, note in node.items:
        path = (*keypath, key)
        contexts = tuple(reversed(path[:-1]))
        is_env = key.lower() in ("env", "environment", "env_vars", "envs")
        if env_section and ENV_NAME.match(key):
            col.scan.env_defined.add(key)
        param, _ = match_param(key, " ".join(path))
        if param is None and param_parent and child.kind == "scalar":
            param = param_parent
        if param and (
            child.kind == "scalar" or (child.kind == "seq" and child.seq and all(c.kind == "scalar" for c in child.seq))
        ):
            value = _scalar_value(child)
            if note:
                value = Value(value.value, value.expr, value.env_var, value.env_default, note)
            col.add(
                line=child.line,
                key=".".join(path),
                value=value,
                param=param,
                contexts=contexts,
                model=model,
                group=group,
            )
            continue
        walk_tree(col, child, path, model, param if child.kind == "map" else None, is_env)


def _scan_string(col: Collector, node: Node, keypath: tuple[str, ...], model: str | None, env_section: bool) -> None:
    text = str(node.value)
    assign = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", text)
    one_assignment = assign is not None and "=" not in assign.group(2)
    command = _FLAG_IN_TEXT.search(text) or re.search(r"llama-server|vllm\s+serve|ollama\s+(serve|run)", text)
    if (
        not one_assignment
        and not command
        and "\n" not in text
        and col.add_pairs(text, line=node.line, owner=".".join(keypath), contexts=tuple(reversed(keypath)), model=model)
    ):
        return  # "sampling_params: temperature=0.6,top_p=0.95" or '{"temperature": 0.6}'
    if assign and "\n" not in text:  # compose "environment: [- TEMP=0.7]"
        if env_section:
            col.scan.env_defined.add(assign.group(1))
        col.add(
            line=node.line,
            key=".".join((*keypath, assign.group(1))),
            value=parse_text(assign.group(2)),
            contexts=tuple(reversed(keypath)),
            model=model,
            group=(keypath, "env"),
        )
        return
    if command:
        first = node.line + (1 if node.block else 0)
        scan_shell(col, text, first_line=first, contexts=tuple(reversed(keypath)), fmt="shell")


def _scan_string_list(col: Collector, node: Node, keypath: tuple[str, ...], model: str | None) -> None:
    """A command as a list of words: ``command: ["--temp", "0.7"]`` (compose, k8s args)."""
    words = [(str(c.value), c.line) for c in node.seq if c.kind == "scalar" and c.value is not None]
    if len(words) >= 2 and any(w.startswith("--") for w, _ in words) and len(words) == len(node.seq):
        scan_argv(col, words, contexts=tuple(reversed(keypath)), group=(keypath, node.line), fmt="shell")


def _tree_scanner(fmt: str, parse: Callable[[str], list[Node]]) -> Callable[[str, str], FileScan]:
    def scan(path: str, text: str) -> FileScan:
        col = Collector(path, fmt, text)
        try:
            trees = parse(text)
        except TooComplex as exc:
            return col.invalid(str(exc))
        except (yaml.YAMLError, ValueError, tomllib.TOMLDecodeError, RecursionError, IndexError):
            return col.invalid(f"invalid {fmt}")
        for tree in trees:
            walk_tree(col, tree)
        return col.done()

    return scan


scan_yaml = _tree_scanner("yaml", yaml_tree)
scan_json = _tree_scanner("json", lambda text: [_JsonReader(text).parse()])
scan_toml = _tree_scanner("toml", lambda text: [toml_tree(text)])


# ---------------------------------------------------------------------------------------------- INI, .env
_INI_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_INI_PAIR = re.compile(r"^\s*([^=:#;\s][^=:]*?)\s*[=:]\s*(.*?)\s*$")


def _strip_inline_comment(value: str) -> str:
    return re.split(r"\s[#;]", value, maxsplit=1)[0].strip()


def scan_ini(path: str, text: str) -> FileScan:
    col = Collector(path, "ini", text)
    section, model = "", None
    rows: list[tuple[int, str, str, str, str | None]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip().startswith(("#", ";")) or not raw.strip():
            continue
        header = _INI_SECTION.match(raw)
        if header:
            section, model = header.group(1).strip(), None
            continue
        pair = _INI_PAIR.match(raw)
        if not pair:
            continue
        key, value = pair.group(1), _strip_inline_comment(pair.group(2))
        if key.lower() in MODEL_KEYS and value:
            model = model_name(value)
        rows.append((number, section, key, value, model))
    for number, sect, key, value, mdl in rows:
        mdl = mdl or next((m for n, s, _, _, m in rows if s == sect and m), None)
        col.add(
            line=number,
            key=f"{sect}.{key}" if sect else key,
            value=parse_text(value),
            contexts=(sect,),
            model=mdl,
            group=sect,
        )
    return col.done()


def scan_systemd(path: str, text: str) -> FileScan:
    """systemd units: ``Environment=`` defines variables, ``ExecStart=`` is a command line."""
    col = Collector(path, "systemd", text)
    for number, raw in enumerate(text.splitlines(), start=1):
        key, sep, value = raw.strip().partition("=")
        if not sep or key.startswith(("#", ";")):
            continue
        if key == "Environment":
            for word in tokens_of(value):
                name, eq, val = word.partition("=")
                if eq and ENV_NAME.match(name):
                    col.scan.env_defined.add(name)
                    col.add(line=number, key=name, value=parse_text(val), contexts=(raw,), group="env")
        elif key.startswith("Exec"):
            scan_argv(col, [(t, number) for t in tokens_of(value)], contexts=(key,), group=number)
    return col.done()


def scan_env(path: str, text: str) -> FileScan:
    col = Collector(path, "env", text)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not ENV_NAME.match(name):
            continue
        col.scan.env_defined.add(name)
        value = value.strip()
        if not value.startswith(("'", '"')):
            value = _strip_inline_comment(value)
        col.add(line=number, key=name, value=parse_text(value), group="env")
    return col.done()


# ---------------------------------------------------------------------------------------------- Modelfile
def scan_modelfile(path: str, text: str) -> FileScan:
    """Ollama Modelfile: ``FROM`` names the model, ``PARAMETER name value`` sets its defaults."""
    col = Collector(path, "modelfile", text)
    col.scan.runtimes.add("ollama")
    model, from_line, has_temperature, in_block = None, 1, False, False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_block:  # inside a """...""" SYSTEM/TEMPLATE/MESSAGE block
            in_block = '"""' not in line
            continue
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if rest.count('"""') == 1:
            in_block = True
        if instruction == "FROM":
            model, from_line = model_name(rest), number
        elif instruction == "PARAMETER":
            name, _, value = rest.strip().partition(" ")
            param, _ = match_param(name)
            if param:
                has_temperature |= param == "temperature"
                col.add(
                    line=number,
                    key=f"PARAMETER {name}",
                    value=parse_text(value),
                    param=param,
                    model=model,
                    group="modelfile",
                    llm_place=True,
                    default_role=("eval", "an Ollama Modelfile (serving)"),
                )
    if model and not has_temperature:
        spec = DEFAULTS["ollama"]
        col.add(
            line=from_line,
            key="(no PARAMETER temperature)",
            param="temperature",
            model=model,
            value=Value(
                spec.values["temperature"], note=f"{spec.label} default, unless the base model's own Modelfile sets one"
            ),
            implicit=True,
            group="modelfile",
            default_role=("eval", "an Ollama Modelfile (serving)"),
        )
    return col.done()


# ---------------------------------------------------------------------------------------------- Markdown
# Fenced blocks read as command lines; other languages (python, yaml, ...) are examples, not run instructions.
_SHELL_LANGUAGES = frozenset({"", "sh", "bash", "shell", "zsh", "console", "shell-session", "sh-session", "text"})
_HEADING = re.compile(r"^ {0,3}(?:#{1,6}\s+(.*?)\s*#*|\s*<summary>(.*?)</summary>)\s*$")
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_PROMPT = re.compile(r"^(\s*)\$ ")  # "$ python eval.py" in a console block
_MAX_PROSE_LINE = 4000  # longer lines are not searched for code spans (the search is quadratic at worst)


def scan_markdown(path: str, text: str) -> FileScan:
    """A README's run instructions: fenced shell blocks, indented blocks and inline code spans, read as command
    lines (prose is not). Their findings are documentation (``Finding.documentation``), not configuration.
    The nearest heading is role context ("## Evaluation"). Fences are CommonMark's (``core.markdown``)."""
    col = Collector(path, "markdown", text)
    heading, fence, language, block, block_start = "", "", "", [], 0
    previous_blank = True

    def flush() -> None:
        if block and language.lower() in _SHELL_LANGUAGES:
            code = "\n".join(_PROMPT.sub(r"\1", line) for line in block)
            scan_shell(col, code, first_line=block_start, contexts=(heading,), implicit_defaults=False)
        block.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        after_blank, previous_blank = previous_blank, not raw.strip()
        if fence:  # inside a fenced block: until a fence of the same kind, at least as long
            if closes_fence(raw, fence):
                flush()
                fence = ""
            else:
                block.append(raw)
            continue
        if block and (raw.startswith(("    ", "\t")) or not raw.strip()):  # an indented block goes on
            block.append(raw)
            continue
        flush()
        opening = fence_opening(raw)
        if opening:
            fence, language, block_start = opening.marker, opening.language, number + 1
        elif after_blank and raw.startswith(("    ", "\t")) and raw.strip():
            language, block_start = "", number
            block.append(raw)
        else:
            title = _HEADING.match(raw)
            heading = next((g for g in title.groups() if g), heading) if title else heading
            spans = _INLINE_CODE.finditer(raw) if len(raw) <= _MAX_PROSE_LINE else ()
            for span in spans:  # `python eval.py --temperature 0.7` in a sentence
                scan_shell(
                    col,
                    _PROMPT.sub(r"\1", span.group(2).strip()),
                    first_line=number,
                    contexts=(heading,),
                    implicit_defaults=False,
                )
    if not fence:  # an unclosed fence is not a code block
        flush()
    return col.done()


# ---------------------------------------------------------------------------------------------- dispatch
def _scan_shell_file(fmt: str) -> Callable[[str, str], FileScan]:
    def scan(path: str, text: str) -> FileScan:
        col = Collector(path, fmt, text)
        scan_shell(col, text)
        return col.done()

    return scan


def scanner_for(path: str) -> tuple[str, Callable[[str, str], FileScan]] | None:
    """The format and scanner for a path, decided by its name."""
    from pipeline.audit.pyscan import scan_python  # the Python scanner is the largest; keep imports lazy

    name = PurePosixPath(path).name
    lower = name.lower()
    suffix = PurePosixPath(lower).suffix
    if lower.startswith("modelfile") or suffix == ".modelfile":
        return "modelfile", scan_modelfile
    if lower.startswith(("dockerfile", "containerfile")) or suffix == ".dockerfile":
        return "dockerfile", _scan_shell_file("dockerfile")
    if lower.startswith("procfile"):
        return "procfile", _scan_shell_file("procfile")
    if lower.startswith(("makefile", "justfile")) or suffix == ".mk":
        return "makefile", _scan_shell_file("makefile")
    if lower == ".env" or lower.startswith(".env.") or suffix == ".env":
        return "env", scan_env
    table: dict[str, tuple[str, Callable[[str, str], FileScan]]] = {
        ".yaml": ("yaml", scan_yaml),
        ".yml": ("yaml", scan_yaml),
        ".json": ("json", scan_json),
        ".toml": ("toml", scan_toml),
        ".ini": ("ini", scan_ini),
        ".cfg": ("ini", scan_ini),
        ".conf": ("ini", scan_ini),
        ".service": ("systemd", scan_systemd),
        ".py": ("python", scan_python),
        ".sh": ("shell", _scan_shell_file("shell")),
        ".bash": ("shell", _scan_shell_file("shell")),
        ".zsh": ("shell", _scan_shell_file("shell")),
        ".md": ("markdown", scan_markdown),
        ".markdown": ("markdown", scan_markdown),
    }
    return table.get(suffix)
