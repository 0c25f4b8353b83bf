"""Which files the prompt shows: the gold patch's (oracle) or a BM25 ranking of the repository's files.

Oracle retrieval tells the model where the fix goes, so its results are an upper bound; BM25 over the files
at the base commit, queried with the issue text, is the honest setting (SWE-bench's "BM25 retrieval"). This is
a plain Okapi BM25 (k1 = 1.2, b = 0.75) over identifier-ish tokens, small enough not to need a package.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

RETRIEVALS = ("oracle", "bm25")
MAX_INDEXED_BYTES = 512 * 1024  # a file larger than this is data or generated code, not worth ranking
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*|[0-9]+")


def tokens(text: str) -> list[str]:
    """Words, with snake_case and camelCase split too (``slugify_text`` -> slugify, text, slugify_text)."""
    found = []
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text):
        found.append(word.lower())
        parts = [p for chunk in word.split("_") for p in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", chunk)]
        if len(parts) > 1:
            found.extend(p.lower() for p in parts)
    return found


def bm25_rank(query: str, documents: dict[str, str], k1: float = 1.2, b: float = 0.75) -> list[tuple[str, float]]:
    """(name, score) for every document with a positive score, best first (ties by name)."""
    counts = {name: Counter(tokens(text) + tokens(name)) for name, text in documents.items()}
    if not counts:
        return []
    lengths = {name: sum(c.values()) for name, c in counts.items()}
    average = sum(lengths.values()) / len(lengths) or 1.0
    frequency = Counter(term for c in counts.values() for term in c)
    total = len(counts)
    scores = []
    for name, count in counts.items():
        score = 0.0
        for term in set(tokens(query)):
            if term not in count:
                continue
            idf = math.log(1 + (total - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = count[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[name] / average))
        if score > 0:
            scores.append((name, score))
    return sorted(scores, key=lambda item: (-item[1], item[0]))


def python_files(work_tree: Path) -> dict[str, str]:
    files = {}
    for path in sorted(work_tree.rglob("*.py")):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_INDEXED_BYTES:
            continue
        files[path.relative_to(work_tree).as_posix()] = path.read_text(encoding="utf-8", errors="replace")
    return files


def bm25_files(work_tree: Path, query: str, k: int = 3) -> list[str]:
    return [name for name, _ in bm25_rank(query, python_files(work_tree))[:k]]
