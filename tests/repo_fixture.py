"""A small real Python repository with a real git history of solved issues, for the repo-level suite.

``build_fixture_repo(path)`` makes ``acme/calc``: a ``calc`` package with tests, then pull requests merged
with ``git merge --no-ff`` (so each has a real merge commit, merge base and diff):

| PR | closes | what | expected |
|---|---|---|---|
| !2 | #1 | ``divide(x, 0)`` raises ValueError; adds a test | kept: 1 FAIL_TO_PASS |
| !4 | #3 | ``mean([])`` is 0.0; branched before !2 merged (merge base != first parent) | kept |
| !5 | – | README and a docstring, no test | dropped: no_tests |
| !6 | – | ``add`` rewritten, a new test that already passes | dropped: tests_pass_before |
| !8 | #7 | a new module ``calc/text.py`` and its test file | kept: the new file's tests |
| !9 | – | closed without merging | not a candidate |

``serve_fixture(standin, repo)`` seeds the Gitea stand-in with the issues and PRs (real shas, merge bases and
``git diff base...head`` diffs) and serves archives, commits and clones from the bare repository.
Commit dates are fixed, so the shas are the same on every run.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = "acme/calc"

OPS = '''"""Arithmetic helpers."""


def add(a, b):
    return a + b


def divide(a, b):
    return a / b


def mean(values):
    return sum(values) / len(values)
'''

TEST_OPS = """from calc.ops import add, divide, mean


def test_add():
    assert add(2, 3) == 5


def test_divide():
    assert divide(6, 3) == 2


def test_mean():
    assert mean([1, 2, 3]) == 2
"""


@dataclass
class FixturePull:
    number: int
    title: str
    body: str
    branch: str
    diff: str = ""
    merged: bool = True
    merge_commit: str = ""
    merge_base: str = ""
    head_sha: str = ""
    merged_at: str = ""


@dataclass
class FixtureRepo:
    work: Path  # the working repository the history was made in
    bare: Path  # what the stand-in serves
    initial: str  # the first commit
    issues: dict[int, tuple[str, str]] = field(default_factory=dict)  # number -> (title, body)
    pulls: dict[int, FixturePull] = field(default_factory=dict)
    kept: tuple[int, ...] = (2, 4, 8)
    dropped: dict[int, str] = field(default_factory=lambda: {5: "no_tests", 6: "tests_pass_before"})


class _Git:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.clock = 1_760_000_000  # fixed dates: the same shas on every run

    def __call__(self, *args: str, raw: bool = False) -> str:
        self.clock += 60
        date = f"@{self.clock} +0000"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.work),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Alice",
            "GIT_AUTHOR_EMAIL": "alice@example.com",
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": "Alice",
            "GIT_COMMITTER_EMAIL": "alice@example.com",
            "GIT_COMMITTER_DATE": date,
        }
        out = subprocess.run(["git", *args], cwd=self.work, env=env, check=True, capture_output=True, text=True).stdout
        return out if raw else out.strip()

    def write(self, files: dict[str, str]) -> None:
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, message: str, files: dict[str, str]) -> str:
        self.write(files)
        self("add", "-A")
        self("commit", "-q", "-m", message)
        return self("rev-parse", "HEAD")

    def branch_from(self, name: str, start: str) -> None:
        self("checkout", "-q", "-b", name, start)

    def merge(self, pull: FixturePull) -> None:
        self("checkout", "-q", "main")
        pull.merge_base = self("merge-base", "main", pull.branch)
        pull.head_sha = self("rev-parse", pull.branch)
        pull.diff = self("diff", f"{pull.merge_base}...{pull.branch}", raw=True)
        self("merge", "-q", "--no-ff", "-m", f"Merge pull request '{pull.title}' (#{pull.number})", pull.branch)
        pull.merge_commit = self("rev-parse", "HEAD")
        pull.merged_at = f"2026-01-0{pull.number if pull.number < 10 else 9}T12:00:00Z"


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


def build_fixture_repo(path: Path) -> FixtureRepo:
    work = path / "calc"
    work.mkdir(parents=True)
    git = _Git(work)
    git("init", "-q", "-b", "main")
    initial = git.commit(
        "Initial calc package",
        {
            "README.md": "# calc\n\nA tiny calculator library.\n",
            "calc/__init__.py": '"""A tiny calculator library (a test fixture of ssd-bot)."""\n',
            "calc/ops.py": OPS,
            "tests/test_ops.py": TEST_OPS,
            "requirements-test.txt": "# pytest comes with the environment; nothing to install\n",
            # The environment's own pytest plugins (anyio, timeout) only slow every run down.
            ".ssd.yml": 'env:\n  PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"\n',
        },
    )
    fixture = FixtureRepo(work=work, bare=path / "calc.git", initial=initial)
    fixture.issues[1] = (
        "divide by zero gives an unhelpful ZeroDivisionError",
        "`calc.ops.divide(1, 0)` raises ZeroDivisionError. It should raise "
        '`ValueError("division by zero")` so callers can handle bad input.',
    )
    fixture.issues[3] = (
        "mean([]) crashes",
        "`calc.ops.mean([])` raises ZeroDivisionError; the mean of no values should be 0.0.",
    )
    fixture.issues[7] = (
        "Add a slugify helper",
        'We need `calc.text.slugify("Hello World") == "hello-world"`: '
        "lower-case, runs of non-alphanumerics become one dash, no dash at either end.",
    )

    # !2 fixes #1.
    pull = FixturePull(2, "Raise ValueError on division by zero", "Fixes #1", "fix-divide")
    git.branch_from(pull.branch, "main")
    git.commit(
        "divide: ValueError on zero",
        {
            "calc/ops.py": _replace(
                OPS,
                "def divide(a, b):\n    return a / b",
                'def divide(a, b):\n    if b == 0:\n        raise ValueError("division by zero")\n    return a / b',
            ),
            "tests/test_ops.py": TEST_OPS + "\n\ndef test_divide_by_zero():\n    import pytest\n\n"
            "    with pytest.raises(ValueError):\n        divide(1, 0)\n",
        },
    )
    mean_start = git("rev-parse", "main")  # !4 branches off before !2 is merged
    git.merge(pull)
    fixture.pulls[2] = pull

    # !4 closes #3, from a branch that started before !2 merged.
    pull = FixturePull(4, "mean of nothing is 0.0", "Closes #3.\n\nAlso see the discussion in #1.", "fix-mean")
    git.branch_from(pull.branch, mean_start)
    git.commit(
        "mean: 0.0 for no values",
        {
            "calc/ops.py": _replace(
                OPS,
                "def mean(values):\n    return",
                "def mean(values):\n    if not values:\n        return 0.0\n    return",
            ),
            # At the top, so that it merges with !2's test added at the end.
            "tests/test_ops.py": _replace(
                TEST_OPS, "\n\ndef test_add", "\n\ndef test_mean_empty():\n    assert mean([]) == 0.0\n\n\ndef test_add"
            ),
        },
    )
    git.merge(pull)
    fixture.pulls[4] = pull

    # !5: documentation only, no test.
    pull = FixturePull(5, "Docs: usage", "Document how to use the package.", "docs")
    git.branch_from(pull.branch, "main")
    ops = (work / "calc/ops.py").read_text()
    git.commit(
        "docs",
        {
            "README.md": "# calc\n\nA tiny calculator library.\n\n```python\nfrom calc.ops import add\n"
            "add(2, 3)\n```\n",
            "calc/ops.py": _replace(ops, '"""Arithmetic helpers."""', '"""Arithmetic helpers: add, divide, mean."""'),
        },
    )
    git.merge(pull)
    fixture.pulls[5] = pull

    # !6: a refactor whose new test passes before it too.
    pull = FixturePull(6, "Simplify add", "A refactor; adds a test for negative numbers.", "simplify-add")
    git.branch_from(pull.branch, "main")
    ops = (work / "calc/ops.py").read_text()
    tests = (work / "tests/test_ops.py").read_text()
    git.commit(
        "add via sum",
        {
            "calc/ops.py": _replace(ops, "    return a + b", "    return sum((a, b))"),
            "tests/test_ops.py": tests + "\n\ndef test_add_negative():\n    assert add(-2, -3) == -5\n",
        },
    )
    git.merge(pull)
    fixture.pulls[6] = pull

    # !8 resolves #7 with a new module.
    pull = FixturePull(8, "Add calc.text.slugify", "Resolves #7", "slugify")
    git.branch_from(pull.branch, "main")
    git.commit(
        "slugify",
        {
            "calc/text.py": '"""Text helpers."""\n\nimport re\n\n\ndef slugify(text):\n'
            '    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")\n',
            "tests/test_text.py": "from calc.text import slugify\n\n\ndef test_slugify():\n"
            '    assert slugify("Hello World") == "hello-world"\n\n\n'
            'def test_slugify_trims():\n    assert slugify("  --Hi!-- ") == "hi"\n',
        },
    )
    git.merge(pull)
    fixture.pulls[8] = pull

    # !9: closed without merging.
    pull = FixturePull(9, "WIP: an experiment", "Not going anywhere.", "experiment", merged=False)
    git.branch_from(pull.branch, "main")
    git.commit("experiment", {"calc/ops.py": (work / "calc/ops.py").read_text() + "\n\nEXPERIMENT = True\n"})
    pull.head_sha = git("rev-parse", "HEAD")
    pull.merge_base = git("merge-base", "main", pull.branch)
    pull.diff = git("diff", f"{pull.merge_base}...{pull.branch}", raw=True)
    git("checkout", "-q", "main")
    fixture.pulls[9] = pull

    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(fixture.bare)], check=True, capture_output=True)
    return fixture


def serve_fixture(standin: object, fixture: FixtureRepo, full_name: str = REPO) -> None:
    """Seed the stand-in with the fixture's issues and PRs, in number order, over its git repository."""
    standin.add_repo(full_name)  # type: ignore[attr-defined]
    standin.set_git_dir(full_name, str(fixture.bare))  # type: ignore[attr-defined]
    for number in sorted({*fixture.issues, *fixture.pulls}):
        if number in fixture.issues:
            title, body = fixture.issues[number]
            issue = standin.add_issue(full_name, title, body, state="closed")  # type: ignore[attr-defined]
        else:
            pull = fixture.pulls[number]
            issue = standin.add_pull(  # type: ignore[attr-defined]
                full_name,
                pull.title,
                pull.body,
                diff=pull.diff,
                merged=pull.merged,
                state=None if pull.merged else "closed",
                head=pull.branch,
                merge_commit_sha=pull.merge_commit or None,
                merge_base=pull.merge_base,
                head_sha=pull.head_sha,
                merged_at=pull.merged_at or None,
            )
        assert issue["number"] == number, (issue["number"], number)
