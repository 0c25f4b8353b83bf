"""The training buffer on real SQLite and real PostgreSQL (``database_url`` runs each test on both)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.db import engine_for
from pipeline.buffer import Example, TrainingBuffer
from ssd.cli import main

ROOT = Path(__file__).resolve().parents[1]


def example(pr: int, sha: str | None = None, **overrides) -> Example:
    fields = {
        "repo": "acme/widgets",
        "pr_number": pr,
        "merge_sha": sha or f"{pr:040x}",
        "prompt": f"Issue {pr}: widgets overflow\n\nResizing makes widgets spill out. café ✓",
        "answer": f"diff --git a/w.py b/w.py\n+fix {pr}\n",
        "issue_numbers": [pr + 100],
        "merged_by": "alice",
        "merged_at": f"2026-01-22T10:{pr % 60:02d}:00Z",
        "delivery_id": f"delivery-{pr}",
    }
    fields.update(overrides)
    return Example(**fields)


@pytest.fixture
def buffer(database_url: str) -> TrainingBuffer:
    return TrainingBuffer(engine_for(database_url), window=3)


def test_add_and_read_back(buffer: TrainingBuffer):
    stored = example(1)
    assert buffer.add(stored) is True
    [got] = buffer.active()
    assert got == stored
    assert got.id is not None and got.archived is False
    assert got.issue_numbers == [101] and got.prompt.endswith("café ✓")
    assert buffer.get("acme/widgets", 1, stored.merge_sha) == stored
    assert buffer.get("acme/widgets", 1, "0" * 40) is None
    assert buffer.count() == 1 and buffer.archived() == []


def test_duplicate_merge_is_not_stored_twice(buffer: TrainingBuffer):
    assert buffer.add(example(1)) is True
    # A Replay in Gitea: same merge, new delivery id (and perhaps re-fetched text).
    assert buffer.add(example(1, prompt="changed", delivery_id="delivery-replay")) is False
    [only] = buffer.active()
    assert only.prompt.startswith("Issue 1") and only.delivery_id == "delivery-1"
    # The same PR merged again with another merge commit is a new example; so is another repo.
    assert buffer.add(example(1, sha="f" * 40)) is True
    assert buffer.add(example(1, repo="acme/gadgets")) is True
    assert buffer.count() == 3


def test_window_keeps_the_newest_and_archives_the_rest(buffer: TrainingBuffer):
    for pr in range(1, 6):
        assert buffer.add(example(pr))
    assert [e.pr_number for e in buffer.active()] == [5, 4, 3]
    assert [e.pr_number for e in buffer.archived()] == [2, 1]
    assert all(e.archived for e in buffer.archived())
    assert buffer.count() == 3 and buffer.count(include_archived=True) == 5
    assert [e.pr_number for e in buffer.active(limit=2)] == [5, 4]
    # A redelivered archived merge stays archived and does not move the window.
    assert buffer.add(example(1)) is False
    assert [e.pr_number for e in buffer.active()] == [5, 4, 3]


def test_changing_the_window_reapplies_it(buffer: TrainingBuffer, database_url: str):
    for pr in range(1, 6):
        buffer.add(example(pr))
    buffer.window = 2
    assert [e.pr_number for e in buffer.active()] == [5, 4]
    buffer.window = 4  # growing brings the newest archived examples back
    assert [e.pr_number for e in buffer.active()] == [5, 4, 3, 2]
    assert [e.pr_number for e in buffer.archived()] == [1]
    # A buffer opened with another window (e.g. SSD_BUFFER_SIZE changed) applies it on start.
    reopened = TrainingBuffer(engine_for(database_url), window=1)
    assert [e.pr_number for e in reopened.active()] == [5]
    assert reopened.count(include_archived=True) == 5
    with pytest.raises(ValueError):
        reopened.window = 0


def test_stats(buffer: TrainingBuffer):
    assert buffer.stats()["active"] == 0
    for pr in range(1, 5):
        buffer.add(example(pr))
    buffer.add(example(9, repo="acme/gadgets"))
    stats = buffer.stats()
    assert stats["window"] == 3 and stats["active"] == 3 and stats["archived"] == 2 and stats["repos"] == 2
    assert stats["oldest_active"] <= stats["newest_active"]


@pytest.mark.parametrize(
    "bad",
    [{"repo": "widgets"}, {"pr_number": 0}, {"merge_sha": ""}, {"answer": None}, {"issue_numbers": ["#1"]}],
)
def test_invalid_examples_are_refused(buffer: TrainingBuffer, bad: dict):
    with pytest.raises(ValueError):
        buffer.add(example(1, **bad))
    assert buffer.count(include_archived=True) == 0


def test_export_jsonl(buffer: TrainingBuffer, tmp_path: Path):
    for pr in range(1, 5):
        buffer.add(example(pr))
    out = tmp_path / "nested" / "buffer.jsonl"
    assert buffer.export_jsonl(out) == 3
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["pr_number"] for r in records] == [2, 3, 4]  # oldest first, active only
    first = records[0]
    assert first["prompt"] == [{"role": "user", "content": example(2).prompt}]
    assert first["completion"] == [{"role": "assistant", "content": example(2).answer}]
    assert {k: first[k] for k in ("repo", "merge_sha", "issue_numbers", "merged_by", "delivery_id")} == {
        "repo": "acme/widgets",
        "merge_sha": f"{2:040x}",
        "issue_numbers": [102],
        "merged_by": "alice",
        "delivery_id": "delivery-2",
    }
    assert first["archived"] is False and first["merged_at"] == "2026-01-22T10:02:00Z" and first["created_at"]
    assert "café ✓" in lines[0]  # raw UTF-8, not \u escapes
    assert not list(out.parent.glob(".buffer.jsonl.*"))  # the temp file was renamed away

    handle = io.StringIO()
    assert buffer.export_jsonl(handle, include_archived=True) == 4
    everything = [json.loads(line) for line in handle.getvalue().splitlines()]
    assert [r["pr_number"] for r in everything] == [1, 2, 3, 4]
    assert everything[0]["archived"] is True


def test_export_of_an_empty_buffer(buffer: TrainingBuffer, tmp_path: Path):
    assert buffer.export_jsonl(tmp_path / "empty.jsonl") == 0
    assert (tmp_path / "empty.jsonl").read_text() == ""


def test_concurrent_adds_of_the_same_example(buffer: TrainingBuffer):
    # Two workers processing the same merge (a replayed delivery) at the same moment.
    start = threading.Barrier(8)
    results: list[bool] = []
    errors: list[BaseException] = []

    def add() -> None:
        try:
            start.wait()
            results.append(buffer.add(example(7)))
        except BaseException as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]
    assert buffer.count(include_archived=True) == 1


def test_concurrent_adds_keep_the_window_exact(buffer: TrainingBuffer):
    start = threading.Barrier(12)
    errors: list[BaseException] = []

    def add(pr: int) -> None:
        try:
            start.wait()
            assert buffer.add(example(pr))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(pr,)) for pr in range(1, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert buffer.count() == 3 and buffer.count(include_archived=True) == 12
    everything = buffer.active() + buffer.archived()
    newest_ids = sorted((e.id for e in everything), reverse=True)[:3]
    assert [e.id for e in buffer.active()] == newest_ids


@pytest.mark.slow
def test_to_dataset(buffer: TrainingBuffer, tmp_path: Path):
    pytest.importorskip("datasets")
    assert len(buffer.to_dataset()) == 0  # an empty buffer still has the full schema
    for pr in range(1, 5):
        buffer.add(example(pr))
    dataset = buffer.to_dataset()
    assert len(dataset) == 3
    assert dataset[0]["prompt"] == [{"role": "user", "content": example(2).prompt}]
    assert dataset[0]["completion"] == [{"role": "assistant", "content": example(2).answer}]
    assert dataset["pr_number"] == [2, 3, 4] and dataset[0]["issue_numbers"] == [102]
    assert len(buffer.to_dataset(include_archived=True)) == 4
    assert set(buffer.to_dataset().column_names) == set(json.loads(_first_jsonl_line(buffer)))


def _first_jsonl_line(buffer: TrainingBuffer) -> str:
    handle = io.StringIO()
    buffer.export_jsonl(handle)
    return handle.getvalue().splitlines()[0]


# ---------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_env(settings_env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**settings_env, "SSD_DATABASE_URL": database_url, "SSD_BUFFER_SIZE": "2"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SSD_GITEA_URL", raising=False)
    return env


@pytest.fixture
def filled(cli_env: dict[str, str], database_url: str) -> TrainingBuffer:
    buffer = TrainingBuffer(engine_for(database_url), window=2)
    for pr in range(1, 4):
        buffer.add(example(pr))
    return buffer


def test_cli_list(filled: TrainingBuffer, capsys: pytest.CaptureFixture[str]):
    assert main(["buffer", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["pr_number"] for e in listed] == [3, 2]
    assert listed[0]["prompt"] == example(3).prompt and listed[0]["archived"] is False

    assert main(["buffer", "list", "--archived", "--json"]) == 0
    assert [e["pr_number"] for e in json.loads(capsys.readouterr().out)] == [1]

    assert main(["buffer", "list", "--limit", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 and "acme/widgets" in table[1] and "#103" in table[1] and "Issue 3" in table[1]


def test_cli_list_empty(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]):
    assert main(["buffer", "list"]) == 0
    assert "empty" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["buffer", "list", "--limit", "0"])


def test_cli_stats(filled: TrainingBuffer, capsys: pytest.CaptureFixture[str]):
    assert main(["buffer", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["window"], stats["active"], stats["archived"]) == (2, 2, 1)
    assert main(["buffer", "stats"]) == 0
    assert "archived: 1" in capsys.readouterr().out


def test_cli_export_jsonl(filled: TrainingBuffer, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out.jsonl"
    assert main(["buffer", "export", "--format", "jsonl", str(out)]) == 0
    assert "wrote 2 examples" in capsys.readouterr().out
    assert [json.loads(line)["pr_number"] for line in out.read_text().splitlines()] == [2, 3]
    assert main(["buffer", "export", "--include-archived", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3


def test_cli_bad_buffer_size_names_the_variable(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("SSD_BUFFER_SIZE", "zero")
    assert main(["buffer", "stats"]) == 2
    assert "SSD_BUFFER_SIZE" in capsys.readouterr().err


def test_another_process_sees_the_examples(filled: TrainingBuffer, cli_env: dict[str, str]):
    # Durable means committed to the database, not held in this process: ask a fresh interpreter.
    result = subprocess.run(
        [sys.executable, "-m", "ssd.cli", "buffer", "stats", "--json"],
        cwd=ROOT,
        env={**os.environ, **cli_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["active"] == 2


@pytest.mark.slow
def test_cli_export_hf(filled: TrainingBuffer, tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    assert main(["buffer", "export", "--format", "hf", str(out)]) == 0
    loaded = datasets.load_from_disk(str(out))
    assert loaded["pr_number"] == [2, 3]
    assert loaded[0]["completion"][0]["role"] == "assistant"
