"""Per-file bookkeeping shared by the scanners: turning raw values into findings, roles and env names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.audit.findings import PRIMARY, Finding, infer_role, match_param

# "${VAR}", "${VAR:-0.7}", "${VAR-0.7}", "${VAR:0.7}" (Spring/privateGPT style), "$VAR".
ENV_REF = re.compile(r"^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]|:)?([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
RETRY_WORDS = re.compile(
    r"retr(y|ies|ied)|max_attempts|n_attempts|num_attempts|attempts\s*=|tenacity|backoff", re.IGNORECASE
)
# One word of a composite string: "temperature=0.6" in "temperature=0.6,top_p=0.95,top_k=20" (vLLM-style CLI
# strings, Hydra overrides), and a quoted key in JSON written inside a string ('{"temperature": 0.6}').
_PAIR_WORD = re.compile(r"[^\s,;]+")
_PAIR = re.compile(r"([A-Za-z_][\w.-]*)=([^=]+)")
_JSON_PAIR = re.compile(r"""(["'])([A-Za-z_][\w.-]*)\1\s*:\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)""")
MODEL_KEYS = frozenset(
    {
        "model",
        "model_name",
        "model_id",
        "llm_model",
        "served_model_name",
        "base_model",
        "model_alias",
        "alias",
        "model_path",
        "hf_repo",
        "repo_id",
        "from",
    }
)


@dataclass(frozen=True)
class Value:
    """A setting's value as read: a literal, or an expression (maybe an env var with a default)."""

    value: Any = None
    expr: str | None = None
    env_var: str | None = None
    env_default: str | None = None
    note: str = ""

    @property
    def is_numeric(self) -> bool:
        return isinstance(self.value, int | float) and not isinstance(self.value, bool)


def number(text: str) -> int | float | None:
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def parse_text(raw: str) -> Value:
    """A value written as text (.env, INI, shell, YAML strings): number, env reference, template, or string."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    env = ENV_REF.match(text)
    if env:
        name = env.group(1) or env.group(3)
        default = env.group(2) if env.group(1) and env.group(2) else None
        return Value(expr=text, env_var=name, env_default=default)
    if "$" in text or "{{" in text or "%(" in text or "{%" in text:
        return Value(expr=text)
    num = number(text)
    if num is not None:
        return Value(num)
    return Value(text)


def sampling_pairs(text: str, context: str = "") -> list[tuple[int, str, str, str]]:
    """(offset, name, parameter, raw value) of the sampling settings packed into one string.

    Either the whole string is ``key=value`` words (separated by commas, semicolons or spaces: prose that
    merely mentions "temperature=0.7" is not), or it holds JSON-style ``"key": number`` pairs.
    """
    words = list(_PAIR_WORD.finditer(text))
    pairs = [_PAIR.fullmatch(w.group()) for w in words]
    if words and all(pairs):
        found = [(w.start(), m.group(1), m.group(2)) for w, m in zip(words, pairs, strict=True) if m]
    else:
        found = [(m.start(), m.group(2), m.group(3)) for m in _JSON_PAIR.finditer(text)]
    result = []
    for offset, name, raw in found:
        param, _ = match_param(name, context)
        if param:
            result.append((offset, name, param, raw))
    return result


def model_name(text: str) -> str:
    """A model as written, reduced to what identifies it: a path's file name, no ':latest'."""
    name = text.strip().strip("'\"").rstrip("/")
    if "/" in name and (name.startswith(("/", ".", "~")) or name.endswith(".gguf")):
        name = name.rsplit("/", 1)[-1]
    return name.removesuffix(":latest")


@dataclass
class FileScan:
    """What one file contributed: findings, env names it defines, runtimes it uses, or why it was skipped."""

    path: str
    format: str
    findings: list[Finding] = field(default_factory=list)
    env_defined: set[str] = field(default_factory=set)
    runtimes: set[str] = field(default_factory=set)
    mentions_retry: bool = False
    error: str | None = None


@dataclass
class _Pending:
    group: Any
    finding: Finding
    llm_place: bool


class Collector:
    """Builds the findings of one file.

    Secondary parameters (seed, num_ctx, max_tokens) are kept only when their group (a mapping, a call, a
    command line, a section) also sets a primary one or is an LLM-specific place: that is how "seed: 42" in a
    test config stays out while "seed" next to "temperature" stays in.
    """

    def __init__(self, path: str, fmt: str, text: str = "") -> None:
        self.scan = FileScan(path, fmt, mentions_retry=bool(RETRY_WORDS.search(text)))
        self._pending: list[_Pending] = []
        self._seen: set[tuple] = set()
        self._llm_groups: set[Any] = set()

    @property
    def path(self) -> str:
        return self.scan.path

    def mark_llm_group(self, group: Any) -> None:
        self._llm_groups.add(group)

    def add(
        self,
        *,
        line: int,
        key: str,
        value: Value,
        param: str | None = None,
        contexts: tuple[str, ...] = (),
        model: str | None = None,
        group: Any = None,
        llm_place: bool = False,
        fmt: str | None = None,
        implicit: bool = False,
        default_role: tuple[str | None, str] = (None, ""),
    ) -> None:
        if param is None:
            param, _ = match_param(key.rsplit(".", 1)[-1], " ".join(contexts))
            if param is None:
                return
        if value.value is not None and not value.is_numeric and not isinstance(value.value, list):
            return  # a word where a number belongs ("temp: /tmp", "seed: seed_sft") is not a sampling setting
        role, reason = infer_role(key, *contexts, self.path)
        if role is None and default_role[0]:
            role, reason = default_role
        finding = Finding(
            path=self.path,
            line=line,
            param=param,
            key=key,
            value=value.value,
            format=fmt or self.scan.format,
            role=role,
            role_reason=reason,
            model=model,
            expr=value.expr,
            env_var=value.env_var,
            env_default=value.env_default,
            implicit=implicit,
            note=value.note,
        )
        ident = (finding.line, finding.key, finding.param, finding.implicit)
        if ident in self._seen:
            return
        self._seen.add(ident)
        self._pending.append(_Pending(group, finding, llm_place))

    def add_pairs(
        self,
        text: str,
        *,
        line: int,
        owner: str,
        contexts: tuple[str, ...] = (),
        model: str | None = None,
        fmt: str | None = None,
    ) -> set[str]:
        """Report the settings of a composite string (``sampling_pairs``) held by ``owner`` (a flag, a key,
        a variable); keys read ``owner[name]``. Returns the parameters found (none: not a composite)."""
        pairs = sampling_pairs(text, owner)  # like a keyword argument's callee: only the owner rules out retrieval
        for offset, name, param, raw in pairs:
            self.add(
                line=line + text.count("\n", 0, offset),
                key=f"{owner}[{name}]" if owner else name,
                value=parse_text(raw),
                param=param,
                contexts=(owner, *contexts),
                model=model,
                group=(line, owner, "pairs"),
                fmt=fmt,
            )
        return {param for _, _, param, _ in pairs}

    def invalid(self, reason: str) -> FileScan:
        self.scan.error = reason
        return self.scan

    def done(self) -> FileScan:
        groups_with_primary = {p.group for p in self._pending if p.finding.param in PRIMARY}
        for item in self._pending:
            keep = (
                item.finding.param in PRIMARY
                or item.llm_place
                or item.group in groups_with_primary
                or item.group in self._llm_groups
            )
            if keep:
                self.scan.findings.append(item.finding)
        self.scan.findings.sort(key=lambda f: (f.line, f.key))
        return self.scan
