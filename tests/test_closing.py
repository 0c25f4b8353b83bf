"""Gitea's closing-keyword grammar (GITEA.md §5), table-driven."""

from __future__ import annotations

import pytest

from bot.closing import Grammar, closed_issues, find_references, shorten_issue_urls, strip_markdown

ROOT = "https://git.example.com/"
REPO = "acme/widgets"


def closed(title: str = "", body: str = "", **kwargs) -> list[str]:
    return [f"{r.owner}/{r.name}#{r.index}" for r in closed_issues(title, body, REPO, root_url=ROOT, **kwargs)]


# (title, body, issues closed)
CASES = [
    # keyword forms
    ("Fixes #12", "", ["acme/widgets#12"]),
    ("fixes: #12", "", ["acme/widgets#12"]),
    ("FIXES #12", "", ["acme/widgets#12"]),
    ("", "Closes #1", ["acme/widgets#1"]),
    ("", "closed #1", ["acme/widgets#1"]),
    ("", "fix #1", ["acme/widgets#1"]),
    ("", "fixed #1", ["acme/widgets#1"]),
    ("", "resolve #1", ["acme/widgets#1"]),
    ("", "resolves #1", ["acme/widgets#1"]),
    ("", "Resolved: #1", ["acme/widgets#1"]),
    ("Refactor (closes #12)", "", ["acme/widgets#12"]),
    ("[fixes #12] refactor", "", ["acme/widgets#12"]),
    ("", "Hi.\nfixes #4.", ["acme/widgets#4"]),
    ("", "fixes #4?", ["acme/widgets#4"]),
    ("", "fixes #4!", ["acme/widgets#4"]),
    # exactly one space, keyword right before the reference, a delimiter before the keyword
    ("Fixes  #12", "", []),
    ("Fixes\t#12", "", []),
    ("Fixes issue #12", "", []),
    ("Fixes:  #12", "", []),
    ("Fixes :#12", "", []),
    ("Prefixes #12", "", []),
    ("unfixed #12", "", []),
    ("Fixes#12", "", []),
    ("fixing #12", "", []),
    ("See #12", "", []),
    # the reference itself
    ("Fixes #12a", "", []),
    ("Fixes #12,#13", "", []),
    ("Fixes #12, #13", "", ["acme/widgets#12"]),
    ("Fixes #12 and fixes #13", "", ["acme/widgets#12", "acme/widgets#13"]),
    ("Fixes #12 fixes #13", "", ["acme/widgets#12", "acme/widgets#13"]),
    ("", "fixes #12\nfixes #13\n", ["acme/widgets#12", "acme/widgets#13"]),
    ("Fixes !12", "", ["acme/widgets#12"]),  # "!" references an index too; the caller checks PR vs issue
    ("Fixes #12'", "", ["acme/widgets#12"]),
    ("Fixes '#12'", "", []),  # the quote is the reference's delimiter, so no space precedes "#"
    # cross-repository
    ("Fixes other/repo#3", "", ["other/repo#3"]),
    ("Fixes Other/Repo.js#3", "", ["other/repo.js#3"]),
    ("fixes acme/widgets#3", "", ["acme/widgets#3"]),
    ("Fixes a/b/c#3", "", []),
    ("Fixes other/repo #3", "", []),
    ("Fixes other/repo#3, fixes #4", "", ["acme/widgets#4", "other/repo#3"]),
    # full URLs in the title are rewritten first; elsewhere they are not references
    ("Fixes https://git.example.com/acme/widgets/issues/7", "", ["acme/widgets#7"]),
    ("Fixes https://git.example.com/other/repo/issues/7", "", ["other/repo#7"]),
    ("Fixes https://git.example.com/acme/widgets/pulls/7", "", ["acme/widgets#7"]),
    ("Fixes https://elsewhere.example/acme/widgets/issues/7", "", []),
    # reopen keywords and the last action wins
    ("Reopens #5", "", []),
    ("Fixes #5", "Reopens #5", []),
    ("Reopens #5", "Fixes #5", ["acme/widgets#5"]),
    ("Fixes #5", "See #5", ["acme/widgets#5"]),
    # Unicode letters in text are fine; the keyword list is what it is
    ("Behebt #5", "", []),
]


@pytest.mark.parametrize(("title", "body", "expected"), CASES)
def test_grammar(title, body, expected):
    assert closed(title, body) == expected


# (Markdown body, issues closed)
MARKDOWN_CASES = [
    ("```\nFixes #1\n```", []),
    ("~~~python\nFixes #1\n~~~\nFixes #2", ["acme/widgets#2"]),
    ("````\n```\nFixes #1\n```\n````\nfixes #3", ["acme/widgets#3"]),
    ("Text\n\n    Fixes #1\n\nfixes #2", ["acme/widgets#2"]),  # indented code block
    ("Text\n    fixes #1", ["acme/widgets#1"]),  # indentation cannot interrupt a paragraph
    ("Use `Fixes #1` to close", []),
    ("``Fixes #1 `x` `` and fixes #2", ["acme/widgets#2"]),
    ("Fixes `#1`", []),
    ("> Fixes #1", ["acme/widgets#1"]),  # quotes are text to Gitea
    ("# Fixes #1", ["acme/widgets#1"]),
    ("- Fixes #1\n- fixes #2\n  * closes #3", ["acme/widgets#1", "acme/widgets#2", "acme/widgets#3"]),
    ("1. Fixes #1", ["acme/widgets#1"]),
    ("**Fixes #1**", ["acme/widgets#1"]),
    ("**Fixes** #1", []),  # emphasis ends the text run right before the reference
    ("Fixes [#1](https://git.example.com/acme/widgets/issues/1)", []),
    ("Fixes [the bug](https://git.example.com/acme/widgets/issues/1)", []),
    ("Fixes [the bug][bug]\n\n[bug]: https://git.example.com/acme/widgets/issues/1", []),
    ("Fixes https://git.example.com/acme/widgets/issues/4", ["acme/widgets#4"]),  # linkified autolink
    ("Fixes <https://git.example.com/acme/widgets/issues/4>", ["acme/widgets#4"]),
    ("Fixes https://elsewhere.example/acme/widgets/issues/4", []),
    ("<!-- Fixes #1 -->\nfixes #2", ["acme/widgets#2"]),
    ("<!--\nFixes #1\n-->\nfixes #2", ["acme/widgets#2"]),
    ("Note <!-- Fixes #1 --> fixes #2", ["acme/widgets#2"]),
    ("<details>\nFixes #1\n</details>\n\nfixes #2", ["acme/widgets#2"]),
    ("Fixes \\#1", ["acme/widgets#1"]),
    ("| a | b |\n|---|---|\n| Fixes #1 | x |", ["acme/widgets#1"]),
    ("Fixes #1\r\nFixes #2\r\n", ["acme/widgets#1", "acme/widgets#2"]),
    ("", []),
]


@pytest.mark.parametrize(("body", "expected"), MARKDOWN_CASES)
def test_body_is_stripped_markdown(body, expected):
    assert closed("", body) == expected


def test_title_is_plain_text_not_markdown():
    assert closed("    Fixes #3") == ["acme/widgets#3"]
    assert closed("", "    Fixes #3") == []  # the same text in the body is an indented code block
    assert closed("Fixes [#3](x)") == []  # "[#3](x)": the "(" after "]" is no delimiter


def test_self_reference_and_duplicates():
    assert closed("Fixes #9", "fixes #9", pr_number=9) == []
    assert closed("Fixes #3", "Also fixes #3 and fixes acme/widgets#3") == ["acme/widgets#3"]


def test_link_targets_are_references_without_action():
    refs = find_references("", "See [bug](https://git.example.com/acme/widgets/issues/1)", root_url=ROOT)
    assert [(r.owner, r.name, r.index, r.action) for r in refs] == [("acme", "widgets", 1, "none")]


def test_without_root_url_urls_stay_urls():
    assert closed_issues("Fixes https://git.example.com/acme/widgets/issues/7", "", REPO) == []
    assert closed_issues("Fixes #7", "", REPO)[0].index == 7


def test_shorten_issue_urls():
    assert (
        shorten_issue_urls(
            "Fixes https://git.example.com/o/r/issues/3, and (https://git.example.com/o/r/pulls/4)", ROOT
        )
        == "Fixes o/r#3, and (o/r!4)"
    )
    assert shorten_issue_urls("x https://git.example.com/o/r/issues/3x", ROOT).endswith("issues/3x")


def test_strip_markdown_collects_links_and_drops_code():
    text, links = strip_markdown("Hi [a](https://x.example/a) `code`\n```\nhidden\n```\nbye")
    assert "hidden" not in text and "code" not in text and "Hi" in text and "bye" in text
    assert links == ["https://x.example/a"]


def test_custom_keywords():
    grammar = Grammar(close_keywords=["behebt", "schließt"], reopen_keywords=[])
    assert [r.index for r in closed_issues("Behebt #5, schließt #6", "", REPO, grammar=grammar)] == [5, 6]
    assert closed_issues("Fixes #5", "", REPO, grammar=grammar) == []


def test_long_body_is_linear_enough():
    body = ("Fixes #1 " + "word " * 20 + "\n") * 5000
    assert closed("", body) == ["acme/widgets#1"]
