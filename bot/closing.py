"""Gitea's closing-keyword grammar: which issues does a merged PR close?

A port of Gitea 1.25.4's ``modules/references`` and ``modules/markup/mdstripper`` (GITEA.md §5), because the
merged-PR payload does not list the linked issues. The rules that matter, all reproduced here:

* The title is scanned as plain text, after full ``<ROOT_URL>owner/repo/issues/N`` (or ``pulls``) URLs are
  rewritten to ``owner/repo#N`` (``!N``). The body is scanned as stripped Markdown: code blocks, inline code
  and raw HTML are dropped; link destinations are collected apart and never carry an action.
* A reference is ``#N`` or ``!N`` or ``owner/repo#N`` between delimiters (whitespace, start/end of text,
  brackets, quotes, or trailing punctuation followed by whitespace/end).
* The keyword, an optional colon and **exactly one space** come right before the reference
  (``(?i)(?:\\s|^|\\(|\\[)(KEYWORD):? $``); each reference needs its own keyword.
* When one issue is referenced several times, the last reference that has an action decides it.

Go's regexp ``\\s`` is ASCII whitespace and ``$`` means end of text; the patterns below say so explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

# [repository.pull-request] CLOSE_KEYWORDS / REOPEN_KEYWORDS defaults.
CLOSE_KEYWORDS = ("close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved")
REOPEN_KEYWORDS = ("reopen", "reopens", "reopened")

_WS = r"[\t\n\f\r ]"  # Go's \s
_END = r"(?:" + _WS + r"|\Z|\)|\]|'|\"|[:;,.?!]" + _WS + r"|[:;,.?!]\Z)"
ISSUE_NUMERIC = re.compile(r"(?:" + _WS + r"|^|\(|\[|'|\")([#!][0-9]+)" + _END)
CROSS_NUMERIC = re.compile(
    r"(?:" + _WS + r"|^|\(|\[)([0-9a-zA-Z\-_.]+/[0-9a-zA-Z\-_.]+[#!][0-9]+)"
    r"(?:" + _WS + r"|\Z|\)|\]|[:;,.?!]" + _WS + r"|[:;,.?!]\Z)"
)
VALID_NAME = re.compile(r"^[a-z0-9_.-]+$")


@dataclass(frozen=True)
class IssueRef:
    """A reference found in a PR. ``owner``/``name`` are lower-case, or None for the PR's own repo."""

    index: int
    owner: str | None = None
    name: str | None = None
    is_pull: bool = False  # written as !N
    action: str = "none"  # none | closes | reopens

    def repo(self, default: str) -> str:
        return f"{self.owner}/{self.name}" if self.owner else default.lower()


class Grammar:
    """The keyword patterns for one server's CLOSE_KEYWORDS/REOPEN_KEYWORDS settings."""

    def __init__(
        self, close_keywords: Iterable[str] = CLOSE_KEYWORDS, reopen_keywords: Iterable[str] = REOPEN_KEYWORDS
    ) -> None:
        self.close = self._pattern(close_keywords)
        self.reopen = self._pattern(reopen_keywords)
        words = [w.strip().lower() for w in (*close_keywords, *reopen_keywords)]
        # A keyword match is at most delimiter + keyword + colon + space, so this window is equivalent to
        # scanning the whole prefix and keeps long bodies linear.
        self.window = max((len(w) for w in words), default=0) + 4

    @staticmethod
    def _pattern(words: Iterable[str]) -> re.Pattern[str] | None:
        accepted = [w.strip().lower() for w in words if re.fullmatch(r"[^\W\d_]+", w.strip())]  # letters only
        if not accepted:
            return None
        return re.compile(r"(?i)(?:" + _WS + r"|^|\(|\[)(" + "|".join(map(re.escape, accepted)) + r"):? \Z")

    def action_before(self, text: str, start: int) -> str:
        prefix = text[max(start - self.window, 0) : start]
        if self.close is not None and self.close.search(prefix):
            return "closes"
        if self.reopen is not None and self.reopen.search(prefix):
            return "reopens"
        return "none"

    def _reference(self, text: str, start: int, end: int) -> IssueRef | None:
        token = text[start:end]
        sep = min(i for i in (token.find("#"), token.find("!")) if i >= 0)
        repo, number = token[:sep], token[sep + 1 :]
        action = self.action_before(text, start)
        if not repo:
            return IssueRef(index=int(number), is_pull=token[sep] == "!", action=action)
        parts = repo.lower().split("/")
        if len(parts) != 2 or not all(VALID_NAME.match(p) for p in parts):
            return None
        return IssueRef(index=int(number), owner=parts[0], name=parts[1], is_pull=token[sep] == "!", action=action)

    def scan(self, text: str) -> list[IssueRef]:
        """All ``#N``/``!N`` references, then all ``owner/repo#N`` ones, like ``findAllIssueReferencesBytes``."""
        found: list[IssueRef] = []
        for pattern in (ISSUE_NUMERIC, CROSS_NUMERIC):
            pos = 0
            while True:
                # Go matches against content[pos:], so ``^`` also matches at ``pos``: slice, don't offset.
                match = pattern.search(text[pos:])
                if match is None:
                    break
                start, end = match.start(1) + pos, match.end(1) + pos
                ref = self._reference(text, start, end)
                if ref is not None:
                    found.append(ref)
                pos = end  # the trailing delimiter may start the next reference
        return found


DEFAULT_GRAMMAR = Grammar()


# ---- plain text (the title) ----------------------------------------------------------------------------


def _root(root_url: str | None) -> str | None:
    return root_url.strip().rstrip("/") + "/" if root_url and root_url.strip() else None


def shorten_issue_urls(text: str, root_url: str | None) -> str:
    """``<ROOT_URL>owner/repo/issues/N`` -> ``owner/repo#N`` (``pulls`` -> ``!``), as Gitea does for titles."""
    root = _root(root_url)
    if root is None:
        return text
    pattern = re.compile(
        r"(" + _WS + r"|^|\(|\[)" + re.escape(root) + r"([0-9a-zA-Z\-_.]+/[0-9a-zA-Z\-_.]+)/(issues|pulls)/([0-9]+)"
        r"(?=" + _WS + r"|\Z|\)|\]|[:;,.?!]" + _WS + r"|[:;,.?!]\Z)"
    )
    pos = 0
    while True:
        match = pattern.search(text[pos:])
        if match is None:
            return text
        short = match.group(2) + ("!" if match.group(3) == "pulls" else "#") + match.group(4)
        begin, finish = match.end(1) + pos, match.end(4) + pos
        text = text[:begin] + short + text[finish:]
        pos = begin + len(short)


# ---- Markdown (the body) -----------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_LIST_ITEM = re.compile(r"^( {0,3}(?:[-+*]|[0-9]{1,9}[.)]))(?:([ \t]+)(.*)|$)")
_LINK_DEF = re.compile(r"^ {0,3}\[([^\]]+)\]:[ \t]*<?([^\s>]+)>?(?:[ \t]+.*)?$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_TABLE_DELIM = re.compile(r"^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *$")
_HTML_RAW_BLOCK = re.compile(r"^ {0,3}<(pre|script|style|textarea)(?:[\s>]|$)", re.I)
_HTML_BLOCK = re.compile(
    r"^ {0,3}</?(address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details|"
    r"dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|h[1-6]|head|header|hr|html|"
    r"iframe|legend|li|link|main|menu|menuitem|nav|noframes|ol|optgroup|option|p|param|search|section|"
    r"summary|table|tbody|td|tfoot|th|thead|title|tr|track|ul)(?:[\s/>]|$)",
    re.I,
)
_HTML_TAG_LINE = re.compile(r"^ {0,3}(?:<[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|</[A-Za-z][A-Za-z0-9-]*\s*>)\s*$")

# Inline constructs, tried in this order at each position.
_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<codetext>.+?)(?<!`)(?P=ticks)(?!`))"
    r"|(?P<autolink><(?P<auto>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>)"
    r"|(?P<comment><!--.*?-->)"
    r"|(?P<tag></?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>)"
    r"|(?P<image>!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]*)(?:\s+[^)]*)?\))"
    r"|(?P<link>\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?(?P<dest>[^)\s>]*)>?(?:\s+[^)]*)?\))"
    r"|(?P<reflink>\[(?P<reftext>[^\]]+)\](?:\[(?P<label>[^\]]*)\])?)"
    r"|(?P<url>(?:https?://|www\.)[^\s<]*[^\s<.,:;\"')\]!?*_~])"
    r"|(?P<escape>\\[!-/:-@\[-`{-~])",
    re.S,
)
_EMPHASIS = re.compile(r"(?<![\\\w*])(\*\*|\*|__|_)(?=\S)(.+?)(?<=\S)\1(?![\w*])", re.S)


class _Stripped:
    """mdstripper's output: text nodes, with a word break before any text node that does not directly
    follow another text node (``processString``/``doubleSpace``), and the link destinations."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.links: list[str] = []
        self.after_text = False

    def text(self, value: str) -> None:
        if not value:
            return
        if not self.after_text and self.chunks:
            self.chunks.append("\n")
        self.chunks.append(value)
        self.after_text = True

    def other(self) -> None:
        """A node that is not text (code span, link, HTML, emphasis edge): the next text starts afresh."""
        self.after_text = False

    def raw(self, value: str) -> None:
        """An autolink to a local issue is written straight out (no break before it, one after it)."""
        self.chunks.append(value)
        self.after_text = False


def _local_issue_path(url: str, root: str | None) -> str | None:
    """``owner/repo#N`` for a link to an issue/PR on this Gitea (same host), else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.netloc.lower()
    local_host = urlsplit(root).netloc.lower() if root else None
    if host and host != local_host:
        return None
    # mdstripper trims the AppURL sub-path with a leading "/" left in place, so only root installs convert.
    pieces = parts.path.split("/")
    if len(pieces) != 5 or pieces[0] != "" or pieces[3] not in ("issues", "pulls") or not pieces[4].isdigit():
        return None
    return f"{pieces[1]}/{pieces[2]}{'#' if pieces[3] == 'issues' else '!'}{pieces[4]}"


def _plain(chunk: str, out: _Stripped) -> None:
    """Text with emphasis: an emphasised run is its own text node, so breaks surround it."""
    pos = 0
    for match in _EMPHASIS.finditer(chunk):
        out.text(chunk[pos : match.start()])
        out.other()
        _plain(match.group(2), out)
        out.other()
        pos = match.end()
    out.text(chunk[pos:])


def _inline(text: str, out: _Stripped, root: str | None, definitions: dict[str, str]) -> None:
    """One paragraph: code spans and HTML vanish, link text is not text, autolinks to local issues become
    short references; each of them breaks the text run as Gitea's AST does."""
    out.other()  # the first text node of a paragraph has no previous sibling
    pos = 0
    for match in _INLINE.finditer(text):
        kind = match.lastgroup
        label = ""
        if kind == "reflink":
            label = (match.group("label") or match.group("reftext")).strip().lower()
            if label not in definitions:
                continue  # plain brackets stay text
        _plain(text[pos : match.start()], out)
        pos = match.end()
        if kind == "escape":
            out.text(match.group(0)[1])  # the escaped character, in the same text run
        elif kind in ("code", "comment", "tag"):
            out.other()
        elif kind == "image":
            out.other()
            out.text(match.group("alt"))  # an image's alt text is rendered as its text children
            out.other()
        elif kind == "link":
            out.links.append(match.group("dest"))
            out.other()
        elif kind == "reflink":
            out.links.append(definitions[label])
            out.other()
        else:  # autolink or bare URL (linkify)
            url = match.group("auto") or match.group("url")
            short = _local_issue_path(url if "://" in url else "http://" + url, root)
            if short is None:
                out.links.append(url)
                out.other()
            else:
                out.raw(short)
    _plain(text[pos:], out)


def strip_markdown(body: str, root_url: str | None = None) -> tuple[str, list[str]]:
    """The text Gitea scans for references in a Markdown body, and the link destinations found in it."""
    root = _root(root_url)
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    definitions: dict[str, str] = {}
    for line in lines:  # reference definitions apply to the whole document
        match = _LINK_DEF.match(line)
        if match:
            definitions[match.group(1).strip().lower()] = match.group(2)

    out = _Stripped()
    paragraph: list[str] = []
    fence: str | None = None
    html_until: str | None = None  # "blank", "-->" or "</pre>" …
    list_indent: int | None = None
    previous_blank = True

    def flush() -> None:
        if paragraph:
            _inline("\n".join(paragraph), out, root, definitions)
            paragraph.clear()

    for raw in lines:
        line = raw.expandtabs(4)
        while _QUOTE.match(line):  # block quote content is ordinary text
            line = _QUOTE.sub("", line, count=1)
        blank = not line.strip()

        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = None
            continue
        if html_until is not None:
            if html_until == "blank":
                if blank:
                    html_until = None
                    previous_blank = True
            elif html_until in line.lower():
                html_until = None
            continue
        if blank:
            flush()
            previous_blank = True
            continue

        indent = len(line) - len(line.lstrip(" "))
        if list_indent is not None:
            if indent >= list_indent:
                line, indent = line[list_indent:], indent - list_indent
            elif previous_blank and not _LIST_ITEM.match(line):
                list_indent = None
        if indent >= 4 and (previous_blank or not paragraph):
            flush()  # indented code block
            previous_blank = False
            continue

        fence_match = _FENCE_OPEN.match(line)
        if fence_match:
            flush()
            fence = fence_match.group(1)
        elif line.lstrip().startswith("<!--"):
            flush()
            html_until = None if "-->" in line.split("<!--", 1)[1] else "-->"
        elif _HTML_RAW_BLOCK.match(line):
            flush()
            tag = _HTML_RAW_BLOCK.match(line).group(1).lower()  # type: ignore[union-attr]
            html_until = None if f"</{tag}>" in line.lower() else f"</{tag}>"
        elif _HTML_BLOCK.match(line) or (_HTML_TAG_LINE.match(line) and not paragraph):
            flush()
            html_until = "blank"
        elif _LINK_DEF.match(line) and not paragraph:
            pass
        elif _SETEXT.match(line) and paragraph:
            flush()  # the paragraph was a heading; the underline is not text
        elif _THEMATIC.match(line):
            flush()
        elif _TABLE_DELIM.match(line) and "|" in line and paragraph:
            pass  # a table's delimiter row
        elif (heading := _ATX.match(line)) is not None:
            flush()
            if heading.group(1):
                paragraph.append(heading.group(1))
                flush()
        elif (item := _LIST_ITEM.match(line)) is not None:
            flush()
            marker, spacing, content = item.group(1), item.group(2) or " ", item.group(3) or ""
            list_indent = len(marker) + min(len(spacing), 4)
            if content.strip():
                paragraph.append(content.strip())
        else:
            paragraph.append(line.strip())
        previous_blank = False
    flush()
    return "".join(out.chunks), out.links


# ---- the answer --------------------------------------------------------------------------------------


def find_references(
    title: str, body: str, root_url: str | None = None, grammar: Grammar = DEFAULT_GRAMMAR
) -> list[IssueRef]:
    """Every reference in a PR's title and body, in Gitea's order (title, body text, body links)."""
    refs = grammar.scan(shorten_issue_urls(title or "", root_url))
    stripped, links = strip_markdown(body or "", root_url)
    refs += grammar.scan(stripped)
    for link in links:
        short = _local_issue_path(link, _root(root_url))
        if short and "/" in short.split("#")[0].split("!")[0]:
            ref = grammar._reference(short, 0, len(short))
            if ref is not None:
                refs.append(replace(ref, action="none"))  # link targets never carry an action
    return refs


def closed_issues(
    title: str,
    body: str,
    repo: str,
    *,
    pr_number: int | None = None,
    root_url: str | None = None,
    grammar: Grammar = DEFAULT_GRAMMAR,
) -> list[IssueRef]:
    """The issues a PR closes when merged, in first-mention order, each with ``owner``/``name`` filled in.

    Per issue the last reference with an action wins (``updateCrossReferenceList``), so ``Fixes #3 …
    reopens #3`` closes nothing. A reference to the PR itself is dropped. Whether an index is a PR rather
    than an issue only the server knows; callers fetch each issue and skip those with ``pull_request`` set.
    """
    own = repo.lower()
    owner, name = own.split("/", 1)
    final: dict[tuple[str, int], IssueRef] = {}
    for ref in find_references(title, body, root_url, grammar):
        resolved = replace(ref, owner=ref.owner or owner, name=ref.name or name)
        key = (resolved.repo(own), resolved.index)
        if key == (own, pr_number):
            continue
        if key not in final:
            final[key] = resolved
        elif resolved.action != "none":
            final[key] = replace(final[key], action=resolved.action)
    return [ref for ref in final.values() if ref.action == "closes"]
