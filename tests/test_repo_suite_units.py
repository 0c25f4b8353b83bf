"""Pure logic of the repository suite: diff splitting, JUnit ids, classification, edit blocks, .ssd.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.repo_suite.build import classify, modules_to_run
from pipeline.repo_suite.edits import edits_to_patch
from pipeline.repo_suite.instances import Instance, InstanceError, instance_id
from pipeline.repo_suite.patches import split_test_patch, touched_files, unsafe_reason
from pipeline.repo_suite.repo_config import RepoConfigError, load_repo_config
from pipeline.repo_suite.testrun import TestRun, parse_junit

DIFF = """diff --git a/calc/ops.py b/calc/ops.py
index 1..2 100644
--- a/calc/ops.py
+++ b/calc/ops.py
@@ -1,2 +1,3 @@
 def f():
+    pass
 x = 1
diff --git a/tests/test_ops.py b/tests/test_ops.py
index 3..4 100644
--- a/tests/test_ops.py
+++ b/tests/test_ops.py
@@ -1 +1,2 @@
 x
+y
diff --git a/calc/new_test.py b/calc/new_test.py
new file mode 100644
--- /dev/null
+++ b/calc/new_test.py
@@ -0,0 +1 @@
+z
diff --git a/docs/old.txt b/docs/old.txt
deleted file mode 100644
--- a/docs/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-gone
"""


def test_split_keeps_sections_byte_for_byte_and_sorts_tests_by_path():
    source, tests = split_test_patch(DIFF)
    assert source + tests != DIFF  # reordered, but every section intact:
    assert sorted((source + tests).split("diff --git")) == sorted(DIFF.split("diff --git"))
    assert touched_files(source) == ["calc/ops.py", "docs/old.txt"]
    assert touched_files(tests) == ["tests/test_ops.py", "calc/new_test.py"]
    assert touched_files(DIFF, existing_after=True) == ["calc/ops.py", "tests/test_ops.py", "calc/new_test.py"]
    # Patterns are configurable: with only "tests/*", the module-level test file is source.
    source, tests = split_test_patch(DIFF, ["tests/*"])
    assert touched_files(tests) == ["tests/test_ops.py"]
    assert modules_to_run(tests) == ["tests/test_ops.py"]


@pytest.mark.parametrize(
    "patch, reason",
    [
        ("diff --git a/x b/x\nnew file mode 120000\n--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+/etc/passwd\n", "symbolic"),
        ("--- a/../../etc/cron.d/x\n+++ b/../../etc/cron.d/x\n@@ -0,0 +1 @@\n+x\n", "leaves the repository"),
        ("--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "leaves the repository"),
        ("diff --git a/x.bin b/x.bin\nGIT binary patch\nliteral 1\n", "binary"),
    ],
)
def test_unsafe_patches_are_refused(patch, reason):
    assert reason in (unsafe_reason(patch) or "")


def test_ordinary_patch_is_safe():
    assert unsafe_reason(DIFF) is None


JUNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_ops" name="test_add" file="tests/test_ops.py" line="3" time="0.001"/>
<testcase classname="tests.test_ops" name="test_div" file="tests/test_ops.py" line="7" time="0.001">
  <failure message="assert 1 == 2">boom</failure></testcase>
<testcase classname="tests.test_ops.TestMean" name="test_empty[0-1]" file="tests/test_ops.py" line="9" time="0"/>
<testcase classname="tests.test_ops" name="test_skip" file="tests/test_ops.py" line="12" time="0">
  <skipped message="later"/></testcase>
<testcase classname="" name="tests.test_text" time="0"><error message="collection failure">ImportError</error></testcase>
</testsuite></testsuites>"""


def test_junit_ids_are_pytest_node_ids():
    assert parse_junit(JUNIT) == {
        "tests/test_ops.py::test_add": "passed",
        "tests/test_ops.py::test_div": "failed",
        "tests/test_ops.py::TestMean::test_empty[0-1]": "passed",
        "tests/test_ops.py::test_skip": "skipped",
        "tests/test_text.py": "error",
    }


def test_junit_with_a_dtd_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuites>&a;</testsuites>'
    with pytest.raises(ValueError, match="DTD"):
        parse_junit(bomb)


def _run(results: dict[str, str], timed_out: bool = False) -> TestRun:
    return TestRun(results, 0, timed_out, 0.1)


def test_classify_fail_to_pass_and_pass_to_pass():
    before = _run({"a": "passed", "b": "failed"})
    after = _run({"a": "passed", "b": "passed", "c": "passed"})
    assert classify(before, [after, after]) == (["b", "c"], ["a"], None, "")


def test_classify_drop_reasons():
    good = _run({"a": "passed", "b": "passed"})
    assert classify(good, [good, good])[2] == "tests_pass_before"
    assert classify(_run({"a": "failed"}), [_run({"a": "failed"})] * 2)[2] == "tests_fail_after"
    assert classify(_run({"a": "failed"}), [_run({"a": "passed"}), _run({"a": "failed"})])[2] == "flaky"
    assert classify(_run({}), [_run({}), _run({})])[2] == "no_test_results"
    assert classify(_run({}, timed_out=True), [good, good])[2] == "tests_timed_out"


FILES = {"calc/ops.py": "def divide(a, b):\n    return a / b   \n\n\ndef mean(v):\n    return sum(v) / len(v)\n"}


def test_search_replace_blocks_become_a_patch():
    answer = (
        "The fix:\n\ncalc/ops.py\n```python\n<<<<<<< SEARCH\ndef divide(a, b):\n    return a / b\n=======\n"
        "def divide(a, b):\n    if b == 0:\n        raise ValueError('zero')\n    return a / b\n>>>>>>> REPLACE\n"
        "```\n\ncalc/text.py\n<<<<<<< SEARCH\n=======\nX = 1\n>>>>>>> REPLACE\n"
    )
    result = edits_to_patch(answer, FILES.get)
    assert result.format == "search_replace" and result.blocks == 2 and not result.errors
    assert result.files == ["calc/ops.py", "calc/text.py"]
    assert "+    if b == 0:\n" in result.patch and "new file mode 100644\n" in result.patch
    assert "mean" not in result.patch.split("@@")[-1] or "sum(v)" in result.patch  # unchanged code stays context


def test_search_text_that_is_not_there_is_reported_not_guessed():
    answer = "calc/ops.py\n<<<<<<< SEARCH\ndef divide(x, y):\n=======\nboom\n>>>>>>> REPLACE\n"
    result = edits_to_patch(answer, FILES.get)
    assert result.patch == "" and result.errors == ["calc/ops.py: SEARCH text not found"]


def test_whole_file_and_diff_answers():
    whole = edits_to_patch("calc/ops.py\n```python\nX = 2\n```\n", FILES.get)
    assert whole.format == "whole_file" and "+X = 2\n" in whole.patch
    diff = edits_to_patch(
        "Sure:\n```diff\n--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1 +1 @@\n-a\n+b\n```\nDone", FILES.get
    )
    assert diff.format == "diff" and diff.patch.startswith("--- a/calc/ops.py") and "Done" not in diff.patch
    nothing = edits_to_patch("I cannot help with that.", FILES.get)
    assert nothing.format == "none" and nothing.blocks == 0 and nothing.patch == ""


def test_edit_paths_cannot_leave_the_repository():
    answer = "../../etc/passwd\n<<<<<<< SEARCH\n=======\nroot::0:0\n>>>>>>> REPLACE\n"
    result = edits_to_patch(answer, lambda path: None)
    assert result.patch == "" and "no usable file path" in result.errors[0]


def test_ssd_yml_overrides_and_validation(tmp_path: Path):
    (tmp_path / ".ssd.yml").write_text(
        "test_command: make test JUNIT={junit}\ntest_patterns: [spec/*]\nenv: {FOO: bar}\n"
    )
    config = load_repo_config(tmp_path)
    assert config.test_command == ("make", "test", "JUNIT={junit}")
    assert config.test_patterns == ("spec/*",) and config.env == {"FOO": "bar"}
    assert config.with_overrides(test_command="pytest -x").test_command == ("pytest", "-x")
    (tmp_path / ".ssd.yml").write_text("env: {PATH: /evil}\n")
    with pytest.raises(RepoConfigError, match="env"):
        load_repo_config(tmp_path)
    (tmp_path / ".ssd.yml").write_text("test_command: [1, 2]\n")
    with pytest.raises(RepoConfigError):
        load_repo_config(tmp_path)


def test_instances_accept_swe_bench_json_strings():
    row = {
        "instance_id": instance_id("acme/calc", 2),
        "repo": "acme/calc",
        "base_commit": "a" * 40,
        "problem_statement": "p",
        "patch": DIFF,
        "test_patch": "",
        "FAIL_TO_PASS": '["t::a"]',
        "PASS_TO_PASS": "[]",
    }
    instance = Instance.from_dict(row)
    assert instance.instance_id == "acme__calc-2" and instance.FAIL_TO_PASS == ["t::a"]
    with pytest.raises(InstanceError):
        Instance.from_dict(dict(row, base_commit="--upload-pack=evil"))


def test_bm25_ranks_the_file_the_issue_talks_about_first():
    from pipeline.repo_suite.retrieval import bm25_rank, tokens

    assert tokens("slugifyText and snake_case") == [
        "slugifytext",
        "slugify",
        "text",
        "and",
        "snake_case",
        "snake",
        "case",
    ]
    documents = {
        "calc/ops.py": "def divide(a, b):\n    return a / b\n\ndef mean(values):\n    return sum(values)\n",
        "calc/text.py": "import re\n\ndef slugify(text):\n    return re.sub('-', text)\n",
        "README.md.py": "A tiny calculator library.",
    }
    ranked = bm25_rank("divide(1, 0) raises ZeroDivisionError; divide should raise ValueError", documents)
    assert ranked[0][0] == "calc/ops.py" and all(name != "calc/text.py" for name, _ in ranked)
    assert bm25_rank("slugify helper", documents)[0][0] == "calc/text.py"


def test_instances_whose_pr_an_adapter_was_trained_on_are_flagged(tmp_path: Path):
    import json

    from pipeline.repo_suite.evaluate import training_overlap

    def make(pr: int) -> Instance:
        return Instance(
            instance_id("acme/calc", pr), "acme/calc", "a" * 40, "p", "", "", [], [], pr_number=pr, pr_numbers=[pr]
        )

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    assert training_overlap([make(2)], str(adapter)) == []  # no record of its training data: nothing to say
    (adapter / "training_data.jsonl").write_text(
        json.dumps({"repo": "Acme/Calc", "pr_number": 2})
        + "\n"
        + json.dumps({"repo": "other/x", "pr_number": 4})
        + "\nnot json\n"
    )
    assert training_overlap([make(2), make(4)], str(adapter)) == ["acme__calc-2"]
    assert training_overlap([make(2)], None) == []
