"""The temperature audit: find every sampling setting a repo runs with, flag the risky ones, measure T_eval.

``audit_files`` scans ``SourceFile`` objects from any source (``walk_local`` here, the Gitea tree reader in
``bot/audit_source.py``); ``audit_path`` is the local shortcut. ``measure`` runs the T_eval grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.audit.collect import FileScan
from pipeline.audit.defaults import DEFAULTS
from pipeline.audit.findings import ROLE_LABELS, Finding, Flag
from pipeline.audit.flags import compute_flags
from pipeline.audit.scanners import scanner_for
from pipeline.audit.sources import Limits, ScanStats, SourceFile, walk_local

__all__ = [
    "AuditResult",
    "Finding",
    "Flag",
    "Limits",
    "ROLE_LABELS",
    "ScanStats",
    "SourceFile",
    "audit_files",
    "audit_path",
    "scan_file",
    "walk_local",
]

_TEXT_SAMPLE = 8192


@dataclass
class AuditResult:
    findings: list[Finding]
    flags: list[Flag]
    stats: ScanStats
    runtimes: list[str]
    source: dict = field(default_factory=dict)  # {"kind": "local", "root": ...} or gitea repo/ref/sha/html_url
    measured: dict | None = None  # part 2, when it ran

    @property
    def explicit(self) -> list[Finding]:
        return [f for f in self.findings if not f.implicit]

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "findings": [f.to_dict() for f in self.findings],
            "flags": [f.to_dict() for f in self.flags],
            "runtimes": self.runtimes,
            "defaults": {
                rt: {
                    "label": DEFAULTS[rt].label,
                    "values": DEFAULTS[rt].values,
                    "source": DEFAULTS[rt].source,
                    "note": DEFAULTS[rt].note,
                }
                for rt in self.runtimes
            },
            "stats": self.stats.to_dict(),
            "measured": self.measured,
        }


def decode(data: bytes) -> str | None:
    """Text of a file, or None for binary (a NUL byte or undecodable UTF-8 in the first 8 KiB)."""
    head = data[:_TEXT_SAMPLE]
    if b"\0" in head:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4:  # not merely a multi-byte character cut at the end
            return None
        return data.decode("utf-8", errors="replace")


def scan_file(source: SourceFile, stats: ScanStats | None = None) -> FileScan | None:
    """Scan one file; None (and a skip reason in ``stats``) when it is binary, unknown or invalid."""
    stats = stats if stats is not None else ScanStats()
    chosen = scanner_for(source.path)
    if chosen is None:
        stats.skip("not a config or source file")
        return None
    fmt, scanner = chosen
    text = decode(source.data)
    if text is None:
        stats.skip("binary")
        return None
    result = scanner(source.path, text.removeprefix("\ufeff"))
    if result.error:
        stats.skip(result.error)
    return result


def audit_files(files: Iterable[SourceFile], stats: ScanStats | None = None, source: dict | None = None) -> AuditResult:
    stats = stats if stats is not None else ScanStats()
    scans: list[FileScan] = []
    for item in files:
        scanned = scan_file(item, stats)
        if scanned is not None:
            scans.append(scanned)
    findings = sorted((f for s in scans if not s.error for f in s.findings), key=lambda f: (f.path, f.line, f.key))
    runtimes = sorted(set().union(*(s.runtimes for s in scans)) if scans else set())
    valid = [s for s in scans if not s.error]
    return AuditResult(findings, compute_flags(findings, valid), stats, runtimes, source or {})


def audit_path(root: str, limits: Limits | None = None) -> AuditResult:
    stats = ScanStats()
    return audit_files(walk_local(root, limits, stats), stats, {"kind": "local", "root": str(root)})
