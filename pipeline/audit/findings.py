"""What a scan reports: findings (one setting at one place), and how keys and roles are recognised."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# Canonical parameter -> names it is written as (keys, keyword arguments, env-var suffixes, flags without dashes).
PARAM_ALIASES: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature", "temp", "t_eval", "t_train"),
    "top_p": ("top_p",),
    "top_k": ("top_k",),
    "min_p": ("min_p",),
    "repeat_penalty": ("repeat_penalty", "repetition_penalty"),
    "seed": ("seed",),
    "num_ctx": ("num_ctx", "n_ctx", "ctx_size", "max_model_len"),
    "max_tokens": ("max_tokens", "max_new_tokens", "num_predict", "n_predict", "max_completion_tokens"),
}
# Sampling knobs proper: always reported. The others (seed, context and length limits) are reported only next
# to a primary one or in an LLM-specific place, because ``seed`` and ``max_tokens`` mean many other things.
PRIMARY = frozenset({"temperature", "top_p", "top_k", "min_p", "repeat_penalty"})
_ALIAS_TO_PARAM = {alias: param for param, aliases in PARAM_ALIASES.items() for alias in aliases}
# Affixes around a name ("eval_temperature", "OLLAMA_TOP_K", "temperature_train") only for unambiguous names.
_AFFIXABLE = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "repetition_penalty",
    "num_ctx",
    "max_tokens",
    "max_new_tokens",
    "seed",
)
# top_k/top_p also name retrieval knobs (RAG "similarity_top_k: 5"); words that mark those as not sampling.
_RETRIEVAL_WORDS = (
    "retriev",
    "rerank",
    "similarity",
    "search",
    "vector",
    "rag",
    "embed",
    "index",
    "mmr",
    "chunk",
    "docs",
    "document",
    "knn",
    "neighbor",
)
# A name around a parameter that makes it a label for it, not its value ("META_KEY_SAMPLING_TOP_P = 2").
_LABEL_WORDS = frozenset(
    {
        "key",
        "keys",
        "id",
        "ids",
        "idx",
        "index",
        "enum",
        "flag",
        "type",
        "mask",
        "name",
        "names",
        "field",
        "attr",
        "col",
        "column",
        "label",
        "unit",
        "units",
        "schedule",
    }
)

TRAIN_STEMS = ("train", "sft", "distill", "synth", "datagen", "finetun", "teacher", "selfdistill")
# Not "chat" or "completion": those name the API (client.chat.completions.create), used by training-data
# synthesis as much as by serving.
EVAL_STEMS = ("serve", "serving", "server", "service", "eval", "bench", "infer", "agent", "deploy", "prod")
_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(text: str) -> list[str]:
    """Lower-case word tokens of a path, key or identifier ("evalConfig" -> ["eval", "config"])."""
    return [w for w in _SPLIT.split(_CAMEL.sub("_", text).lower()) if w]


def normalise_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", _CAMEL.sub("_", key).lower()).strip("_")


def match_param(key: str, context: str = "") -> tuple[str | None, str]:
    """The canonical parameter a key names, and the alias matched; (None, "") when it names none.

    ``context`` (the enclosing key path, call or file path) is only used to rule out retrieval top-k/top-p.
    """
    k = normalise_key(key)
    param, alias = _ALIAS_TO_PARAM.get(k), k
    if param is None:
        for name in _AFFIXABLE:
            if k.endswith("_" + name) or k.startswith(name + "_"):
                if _LABEL_WORDS & set(k.replace(name, " ").replace("_", " ").split()):
                    return None, ""
                param, alias = _ALIAS_TO_PARAM[name], name
                break
    if param in ("top_k", "top_p"):
        text = f"{k} {context}".lower()
        if any(w in text for w in _RETRIEVAL_WORDS):
            return None, ""
    return param, alias if param else ""


def infer_role(*contexts: str) -> tuple[str | None, str]:
    """Role from the nearest context that names one: ("train"|"eval"|None, reason).

    Contexts go from the most specific (the key itself, its parents) to the least (the file path), and the
    first that holds a role word decides: a "train:" block in an "eval/" directory is training.
    """
    for context in contexts:
        if not context:
            continue
        tokens = words(re.sub(r"data[\W_]*gen(eration)?", "datagen", context, flags=re.IGNORECASE))
        train = [t for t in tokens if t.startswith(TRAIN_STEMS)]
        evals = [t for t in tokens if t.startswith(EVAL_STEMS)]
        if train and not evals:
            return "train", f"'{train[0]}' in {context!r}"
        if evals and not train:
            return "eval", f"'{evals[0]}' in {context!r}"
        if train and evals:  # both in one context: the word closest to the end (innermost) wins
            last = max(tokens.index(train[-1]), tokens.index(evals[-1]))
            role = "train" if tokens[last] in train else "eval"
            return role, f"'{tokens[last]}' in {context!r}"
    return None, ""


ROLE_LABELS = {"eval": "serve/eval", "train": "train/sample", None: "unknown"}
# Formats whose findings are documentation (a README's run instructions), not configuration: they still show
# which temperature a team runs with, so they count as evidence for the current setting.
DOCUMENTATION_FORMATS = frozenset({"markdown"})


@dataclass(frozen=True)
class Finding:
    """One sampling setting at one place.

    ``value`` is the literal (a number, a string as written, or None when the value is dynamic or null);
    ``expr`` is the dynamic expression as written (an f-string, a variable, ``${VAR}``). ``implicit`` marks a
    call that sets nothing, where ``value`` is the default of the runtime named in ``note``.
    """

    path: str
    line: int
    param: str
    key: str
    value: Any
    format: str
    role: str | None = None
    role_reason: str = ""
    model: str | None = None
    expr: str | None = None
    env_var: str | None = None
    env_default: str | None = None
    implicit: bool = False
    note: str = ""

    @property
    def number(self) -> float | None:
        """The value as a number when it is one (or a numeric string, or an env default that is)."""
        for candidate in (self.value, self.env_default):
            if isinstance(candidate, bool):
                continue
            if isinstance(candidate, int | float):
                return float(candidate)
            if isinstance(candidate, str):
                try:
                    return float(candidate.strip().strip("'\""))
                except ValueError:
                    continue
        return None

    @property
    def documentation(self) -> bool:
        return self.format in DOCUMENTATION_FORMATS

    @property
    def display(self) -> str:
        if self.expr is not None:
            return self.expr
        if self.value is None:
            return "null"
        return str(self.value)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["number"] = self.number
        data["documentation"] = self.documentation
        return data


@dataclass(frozen=True)
class Flag:
    """A problem worth a human's look; ``places`` are (path, line) of the findings involved."""

    kind: str  # teval_equals_ttrain | greedy_retry | extreme | inconsistent_model | undefined_env | invalid
    message: str
    places: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "places": [list(p) for p in self.places]}
