"""Command-line flags in scripts, Makefiles, Procfiles, Dockerfiles, systemd units and compose commands.

Only long flags are read. Short ones collide across tools: llama.cpp's ``-t`` is threads, ``-c`` context,
``-n`` tokens to predict, and ``-t``/``-s`` mean something else again in most other programs, so matching
them would report settings that are not there.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from pipeline.audit.collect import ENV_NAME, Collector, Value, model_name, parse_text
from pipeline.audit.defaults import DEFAULTS
from pipeline.audit.findings import match_param

_MODEL_FLAGS = (
    "--alias",
    "--model-alias",
    "--model_alias",
    "--served-model-name",
    "--model",
    "-m",
    "--hf-repo",
    "-hf",
    "--model-name",
    "--model_name",
)
# Commands that start a server whose default temperature applies to requests that set none.
_SERVERS = (
    (re.compile(r"(^|[/\s])llama-server(\s|$)|llama_cpp\.server"), "llamacpp"),
    (re.compile(r"(^|[/\s])vllm\s+serve\b|vllm\.entrypoints"), "vllm"),
    (re.compile(r"(^|[/\s])ollama\s+(serve|run)\b"), "ollama"),
)
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_TARGET = re.compile(r"^([A-Za-z0-9_.\-/]+)\s*:(?!=)")  # Makefile target / Procfile process
_FUNC = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{?")


def tokens_of(line: str) -> list[str]:
    """Shell words of one line, comments dropped; Dockerfile JSON arrays reduced to their words."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # unbalanced quotes: fall back to whitespace, still dropping a trailing comment
        words = line.split("#", 1)[0].split()
    return [w.strip("[],\"'") for w in words if w.strip("[],\"'")]


def logical_lines(text: str, first_line: int = 1) -> Iterable[tuple[int, str, list[tuple[str, int]]]]:
    """(start line, joined text, [(token, line)]) per command, joining lines continued with a backslash."""
    start, parts, toks = None, [], []
    for number, raw in enumerate(text.splitlines(), start=first_line):
        line = raw.rstrip()
        continued = line.endswith("\\")
        if continued:
            line = line[:-1]
        if start is None:
            start = number
        parts.append(line)
        toks.extend((t, number) for t in tokens_of(line))
        if not continued:
            yield start, " ".join(parts), toks
            start, parts, toks = None, [], []
    if start is not None:
        yield start, " ".join(parts), toks


def flag_value(token: str, following: str | None) -> tuple[str, str | None]:
    """Split ``--temp=0.7`` or take the next word as the value (unless it is another flag)."""
    name, eq, value = token.partition("=")
    if eq:
        return name, value
    if following is None or (following.startswith("-") and parse_text(following).value is None):
        return name, None
    return name, following


def scan_argv(
    col: Collector,
    tokens: list[tuple[str, int]],
    *,
    contexts: tuple[str, ...],
    group: object,
    fmt: str | None = None,
    implicit_defaults: bool = True,
) -> None:
    """Find sampling flags in one command's words; also env assignments and the served model."""
    text = " ".join(t for t, _ in tokens)
    given: dict[str, str] = {}
    for i, (tok, _line) in enumerate(tokens):
        name, value = flag_value(tok, tokens[i + 1][0] if i + 1 < len(tokens) else None)
        if name == "-m" and i and re.search(r"python[0-9.]*$", tokens[i - 1][0]):
            continue  # "python -m module" names a module, not a model
        if name in _MODEL_FLAGS and value:
            given.setdefault(name, value)
    # The served name (an alias) identifies the model for clients better than the weights file does.
    model = next((model_name(given[f]) for f in _MODEL_FLAGS if f in given), None)
    if model is None:
        positional = re.search(r"\b(?:vllm\s+serve|ollama\s+run)\s+([^\s-][^\s]*)", text)
        model = model_name(positional.group(1)) if positional else None
    runtime = next((rt for pattern, rt in _SERVERS if pattern.search(text)), None)
    if runtime:
        col.scan.runtimes.add(runtime)
        col.mark_llm_group(group)
    found_temperature = False
    leading = True  # still in the "A=1 B=2 cmd" / "export A=1" prefix of the command
    for i, (tok, line) in enumerate(tokens):
        assign = _ASSIGN.match(tok)
        if leading and tok in ("export", "env", "ENV", "ARG", "local", "readonly", "declare"):
            continue
        leading = leading and bool(assign)
        if assign and leading:
            col.scan.env_defined.add(assign.group(1))
            col.add(
                line=line,
                key=assign.group(1),
                value=parse_text(assign.group(2)),
                contexts=(text, *contexts),
                model=model,
                group=group,
                fmt=fmt,
            )
            continue
        if not tok.startswith("--") or len(tok) < 4:
            continue
        name, raw = flag_value(tok, tokens[i + 1][0] if i + 1 < len(tokens) else None)
        param, _ = match_param(name[2:], text)
        if param is None and raw is not None:  # --sampling_params "temperature=0.9,top_p=0.8" as one word
            value_line = line if "=" in tok else tokens[i + 1][1]
            found_temperature |= "temperature" in col.add_pairs(
                raw, line=value_line, owner=name, contexts=(text, *contexts), model=model, fmt=fmt
            )
            continue
        if param is None or raw is None:
            continue
        value = parse_text(raw)
        if not value.is_numeric and value.expr is None:
            continue  # "--temperature-schedule cosine" is not a sampling value
        found_temperature |= param == "temperature"
        col.add(
            line=line,
            key=name,
            value=value,
            param=param,
            contexts=(name, text, *contexts),
            model=model,
            group=group,
            fmt=fmt,
        )
    if runtime and not found_temperature and implicit_defaults:
        default = DEFAULTS[runtime].values["temperature"]
        col.add(
            line=tokens[0][1],
            key="(no --temp)",
            value=Value(default, note=f"{DEFAULTS[runtime].label} default, nothing set here"),
            param="temperature",
            contexts=(text, *contexts),
            model=model,
            group=group,
            fmt=fmt,
            implicit=True,
            default_role=("eval", "a server command"),
        )


def scan_shell(
    col: Collector,
    text: str,
    *,
    first_line: int = 1,
    contexts: tuple[str, ...] = (),
    fmt: str | None = None,
    implicit_defaults: bool = True,
) -> None:
    """Scan a script-like text: each logical command is its own group; Make targets and functions are context.

    ``implicit_defaults=False`` (documentation) reports only what a command sets, not a server's defaults.
    """
    section = ""
    for start, joined, toks in logical_lines(text, first_line):
        stripped = joined.strip()
        if not toks:
            continue
        target, func = _TARGET.match(joined), _FUNC.match(joined)
        if func:
            section = func.group(1)
        elif target and not joined.startswith((" ", "\t")):
            section = target.group(1)
            rest = joined[target.end() :].strip()
            if col.scan.format in ("procfile",) and rest:
                scan_argv(
                    col,
                    [(t, start) for t in tokens_of(rest)],
                    contexts=(section, *contexts),
                    group=(start, "cmd"),
                    fmt=fmt,
                    implicit_defaults=implicit_defaults,
                )
            continue
        if stripped.upper().startswith(("ENV ", "ARG ")) and col.scan.format == "dockerfile":
            _docker_env(col, stripped, start)
            continue
        scan_argv(
            col,
            toks,
            contexts=(section, *contexts) if section else contexts,
            group=(start, "cmd"),
            fmt=fmt,
            implicit_defaults=implicit_defaults,
        )


def _docker_env(col: Collector, line: str, number: int) -> None:
    """``ENV A=1 B=2`` or the legacy ``ENV A 1``; both define A for the env-var check."""
    words = tokens_of(line)[1:]
    if len(words) == 2 and "=" not in words[0] and ENV_NAME.match(words[0]):
        words = [f"{words[0]}={words[1]}"]
    for word in words:
        assign = _ASSIGN.match(word)
        if assign:
            col.scan.env_defined.add(assign.group(1))
            col.add(
                line=number,
                key=assign.group(1),
                value=parse_text(assign.group(2)),
                contexts=(line,),
                group=(number, "env"),
            )
