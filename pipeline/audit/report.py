"""The audit report as text, Markdown or JSON; one summary line, findings, flags, defaults, measurement.

Markdown is rendered with ``core.markdown`` (the same tables and sections as every comment the bot posts),
so the CLI's ``--markdown`` and the ``/ssd audit`` comment are one rendering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.markdown import details, inline_code, md_table
from pipeline.audit.defaults import DEFAULTS
from pipeline.audit.findings import ROLE_LABELS, Finding

if TYPE_CHECKING:
    from pipeline.audit import AuditResult

Linker = Callable[[str, int], str]  # (path, line) -> URL
LONG_TABLE = 15  # findings rows beyond which the table is collapsed
MAX_PATH = 48  # characters of a path shown in a cell; the link keeps the full path


def short_path(path: str, limit: int = MAX_PATH) -> str:
    """``…/deep/dir/file.yaml``: the tail of a long path, cut at a slash when possible."""
    if len(path) <= limit:
        return path
    tail = path[-(limit - 2) :]
    if "/" in tail[1:]:
        tail = tail[tail.index("/", 1) :]
    return "…" + tail


def value_text(f: Finding) -> str:
    text = f.display
    if f.env_var and f.env_default is not None and f.expr and f.env_default not in text:
        text += f" (default {f.env_default})"
    return text


def summary_line(result: AuditResult) -> str:
    src = result.source
    if src.get("kind") == "gitea":
        sha = (src.get("sha") or "")[:10]
        where = f"`{src.get('repo')}` at `{src.get('ref')}`" + (f" ({sha})" if sha and sha != src.get("ref") else "")
    else:
        where = f"`{src.get('root', '.')}`"
    files = len({f.path for f in result.findings})
    implicit = sum(f.implicit for f in result.findings)
    documented = sum(f.documentation and not f.implicit for f in result.findings)
    stats = result.stats
    skipped = sum(v for k, v in stats.skipped.items() if k != "not a config or source file")
    docs = f" + {documented} in documentation (run instructions)" if documented else ""
    line = (
        f"Temperature audit of {where}: {len(result.findings) - implicit - documented} settings"
        f" + {implicit} unset (runtime default){docs} in {files} files · {len(result.flags)} flags · "
        f"{stats.read} files read ({stats.bytes_read:,} bytes), {skipped} skipped"
    )
    if stats.caps_hit:
        line += f" · caps hit: {', '.join(sorted(stats.caps_hit))}"
    return line


def finding_rows(result: AuditResult, link: Linker | None = None) -> list[list[str]]:
    rows = []
    for f in result.findings:
        place = f"{short_path(f.path)}:{f.line}"
        cell = f"[{inline_code(place)}]({link(f.path, f.line)})" if link else inline_code(place)
        value = value_text(f)
        marks = (" *(unset)*" if f.implicit else "") + (" *(docs)*" if f.documentation else "")
        rows.append(
            [
                cell,
                f.param,
                inline_code(f.key),
                inline_code(value) + marks,
                ROLE_LABELS[f.role],
                f.model or "",
                f.format,
                f.note,
            ]
        )
    return rows


FINDING_HEADERS = ["where", "param", "key", "value", "role", "model", "format", "note"]


def skipped_text(result: AuditResult) -> str:
    items = sorted(result.stats.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{reason}: {count}" for reason, count in items) or "nothing"


def defaults_rows(result: AuditResult) -> list[list[str]]:
    rows = []
    for runtime in result.runtimes:
        spec = DEFAULTS.get(runtime)
        if spec:
            values = ", ".join(f"{k} {v:g}" for k, v in spec.values.items() if v is not None)
            rows.append([spec.label, values, spec.note, spec.source])
    return rows


def render_markdown(
    result: AuditResult,
    link: Linker | None = None,
    measured_md: str | None = None,
    footer_md: str | None = None,
    title: str = "Temperature audit",
) -> str:
    parts = [f"### {title}", summary_line(result)]
    if result.findings:
        body = md_table(FINDING_HEADERS, finding_rows(result, link))
        if len(result.findings) > LONG_TABLE:
            body = details(f"{len(result.findings)} findings in {len({f.path for f in result.findings})} files", body)
        parts.append(body)
    else:
        parts.append("_No sampling settings found._")
    if result.flags:
        parts.append("**Flags**\n\n" + "\n".join(f"- **{fl.kind}**: {fl.message}" for fl in result.flags))
    else:
        parts.append("**Flags**: none.")
    rows = defaults_rows(result)
    if rows:
        parts.append(
            details(
                "What runs where nothing is set (runtime defaults and their sources)",
                md_table(["runtime", "defaults", "note", "source"], rows),
            )
        )
    parts.append(f"_Skipped: {skipped_text(result)}._")
    if measured_md:
        parts.append(measured_md)
    if footer_md:
        parts.append(footer_md)
    return "\n\n".join(parts)


def render_text(result: AuditResult) -> str:
    lines = [summary_line(result).replace("`", ""), ""]
    width = max((len(f"{f.path}:{f.line}") for f in result.findings), default=10)
    for f in result.findings:
        extra = "; ".join(x for x in (f"model {f.model}" if f.model else "", f.note) if x)
        lines.append(
            f"{f'{f.path}:{f.line}':<{width}}  {f.param:<14} {value_text(f):<24} "
            f"{ROLE_LABELS[f.role]:<12} {f.key}"
            + (f"  ({extra})" if extra else "")
            + ("  [unset: runtime default]" if f.implicit else "")
            + ("  [documentation]" if f.documentation else "")
        )
    lines.append("")
    lines.append("Flags:" if result.flags else "Flags: none")
    lines += [f"  - [{fl.kind}] {fl.message.replace('`', '')}" for fl in result.flags]
    rows = defaults_rows(result)
    if rows:
        lines.append("")
        lines.append("Runtime defaults (where nothing is set):")
        lines += [f"  - {label}: {values} ({note}; source: {source})" for label, values, note, source in rows]
    lines.append("")
    lines.append(f"Skipped: {skipped_text(result)}")
    return "\n".join(lines)
