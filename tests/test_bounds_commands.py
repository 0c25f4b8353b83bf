"""Bounds on every argument, nothing leaked (issue #8): caps for n, limit and tokens, finite temperatures in
[0, 2], non-negative seeds, no control characters, everything a handler needs checked before enqueueing; no
traceback or server path on the issue; bidi controls shown, not obeyed; ``ssd deliver`` of a missing file."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands import registry
from bot.commands.parse import parse_line
from bot.commands.registry import CommandError, UsageError
from bot.reports import BIDI_CONTROLS, neutralize_bidi, public_text
from bot.status import FAILED, Header, render
from core.config import Settings
from core.queues import ALL, queue
from tests.harness import Bot


def _validate(line: str, settings: Settings | None = None) -> dict:
    parsed = parse_line(line)
    return registry.get(parsed.name).validate(parsed, settings)


# --------------------------------------------------------------------------- argument bounds (pure)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/ssd eval n=100000", "`n=100000` is over this server's limit of 20 (SSD_MAX_N)"),
        ("/ssd eval limit=100000", "`limit=100000` is over this server's limit of 500 (SSD_MAX_LIMIT)"),
        ("/ssd eval max_tokens=1000000", "`max_tokens=1000000` is over this server's limit of 2048 (SSD_MAX_TOKENS)"),
        ("/ssd eval t=nan,inf", "expected a finite number"),
        ("/ssd eval t=0.2,inf", "expected a finite number"),
        ("/ssd eval t=2.5", "temperatures must be between 0 and 2"),
        ("/ssd eval t=-0.1", "temperatures must be between 0 and 2"),
        ("/ssd eval t=" + ",".join(["0.5"] * 11), "at most 10 temperatures per run"),
        ("/ssd eval seed=-99", "`seed=-99` is not valid: expected a whole number from 0 to 2147483647"),
        ("/ssd eval seed=99999999999", "expected a whole number from 0 to 2147483647"),
        ("/ssd eval top_p=2", "expected a number between 0 and 1"),
        ("/ssd eval min_p=nan", "expected a finite number"),
        ("/ssd eval top_k=-1", "expected a whole number from 0 (off) to 1000"),
        ("/ssd eval n=1e3", "expected a whole number"),
        ("/ssd eval model=a\x00b", "`model` contains the control character U+0000"),
        ("/ssd eval suite=x\x1b[31m", "`suite` contains the control character U+001B"),
        ("/ssd eval model=ab\u202ecd", "`model` contains the control character U+202E"),
        ("/ssd eval model=" + "m" * 300, "`model` is 300 characters long; at most 256"),
        ("/ssd audit n=50", "`n=50` is over this server's limit of 20 (SSD_MAX_N)"),
        ("/ssd audit seed=-1", "expected a whole number from 0"),
        ("/ssd cancel ../../etc", "expected a job id such as cmd-123-1"),
        ("/ssd train limit=100000", "`limit=100000` is over this server's limit of 500 (SSD_MAX_LIMIT)"),
        ("/ssd train n=100", "`n=100` is over this server's limit of 20 (SSD_MAX_N)"),
        ("/ssd train max_tokens=99999", "over this server's limit of 2048 (SSD_MAX_TOKENS)"),
        ("/ssd train t_train=nan", "expected a finite number"),
        ("/ssd train t_train=0.5,1.0", "one temperature, not a list"),
        ("/ssd train t_eval=3", "temperatures must be between 0 and 2"),
        ("/ssd train seed=-5", "expected a whole number from 0"),
    ],
)
def test_out_of_bounds_arguments_are_usage_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        _validate(line)
    assert message in str(caught.value)
    assert "\x00" not in str(caught.value) and "\u202e" not in str(caught.value)


def test_caps_come_from_settings() -> None:
    settings = Settings.from_env(
        {"SSD_DATA_DIR": "/tmp/x", "SSD_MAX_N": "4", "SSD_MAX_LIMIT": "7", "SSD_MAX_TOKENS": "64"}
    )
    assert _validate("/ssd eval n=4 limit=7 max_tokens=64", settings)["n"] == 4
    with pytest.raises(UsageError, match=r"`n=5` is over this server's limit of 4 \(SSD_MAX_N\)"):
        _validate("/ssd eval n=5", settings)
    with pytest.raises(UsageError, match="limit of 64"):
        _validate("/ssd eval max_tokens=65", settings)


def test_values_within_bounds_are_accepted() -> None:
    args = _validate("/ssd eval t=0,0.7,2 n=20 limit=500 seed=0 top_p=0.95 top_k=40 min_p=0.05 max_tokens=2048")
    assert (args["t"], args["n"], args["limit"], args["seed"], args["top_k"]) == ([0.0, 0.7, 2.0], 20, 500, 0, 40)
    assert _validate("/ssd cancel `cmd-12-3`")["job"] == "cmd-12-3"


def test_an_audit_grid_with_infinity_is_refused() -> None:
    command = registry.get("audit")
    args = _validate("/ssd audit t=current,inf")
    with pytest.raises(CommandError, match="expected a finite number"):
        command.check(Settings.from_env({"SSD_DATA_DIR": "/tmp/x"}), args)


# --------------------------------------------------------------------------- end to end: nothing enqueued


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/ssd eval n=100000 limit=100000", "over this server's limit of 20 (SSD_MAX_N)"),
        ("/ssd eval t=nan,inf", "expected a finite number"),
        ("/ssd eval seed=-99", "expected a whole number from 0"),
        ("/ssd eval model=smollm2 suite=basic\x00x", "control character U+0000"),
        ("/ssd eval suite=missing.jsonl", "no such file or directory under $SSD_DATA_DIR/suites"),
        ("/ssd eval adapter=../../../../etc", "must name something inside $SSD_DATA_DIR/adapters"),
        ("/ssd audit measure=yes model=nothing-here", "no such file or directory under $SSD_DATA_DIR/models"),
        ("/ssd help nope", "there is no command `nope`"),
    ],
)
def test_bad_arguments_are_answered_at_once_and_nothing_is_enqueued(bot: Bot, body: str, expected: str) -> None:
    from bot.jobs import process_delivery

    index = bot.new_issue()
    outcome = process_delivery(bot.comment(body, index=index, enqueue=False))
    assert outcome["replied"] == ["usage"], outcome
    assert sum(queue(name, bot.conn).count for name in ALL) == 0
    [reply] = bot.bot_comments(index)
    assert expected in reply["body"] and "Usage: `/ssd " in reply["body"]
    assert "Traceback" not in reply["body"] and str(bot.settings.data_dir) not in reply["body"]
    assert "\x00" not in reply["body"]


# --------------------------------------------------------------------------- no traceback, no path


def _leaky(ctx, args) -> str:
    path = ctx.settings.data_dir / "suites" / "private-suite.jsonl"
    raise FileNotFoundError(2, "No such file or directory", str(path))


def _refusing(ctx, args) -> str:
    raise CommandError(f"cannot read {ctx.settings.data_dir / 'suites' / 'x.jsonl'}: line 3 is not JSON")


@pytest.fixture
def failing_commands() -> Iterator[None]:
    registry.register(registry.Command("test-leaky", _leaky, "fails with a path"))
    registry.register(registry.Command("test-refusing", _refusing, "refuses with a path"))
    yield
    registry.REGISTRY.pop("test-leaky", None)
    registry.REGISTRY.pop("test-refusing", None)


def test_a_failed_job_posts_a_short_reason_and_an_error_id_and_logs_the_details(
    bot: Bot, failing_commands, caplog: pytest.LogCaptureFixture
) -> None:
    index = bot.new_issue()
    bot.comment("/ssd test-leaky", index=index)
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        bot.work()
    [status] = bot.bot_comments(index)
    body = status["body"]
    assert "❌ **failed**" in body and "internal error (FileNotFoundError)" in body
    assert str(bot.settings.data_dir) not in body and "private-suite" not in body
    assert "Traceback" not in body and "<details>" not in body
    error_id = body.split("error id `", 1)[1].split("`", 1)[0]
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None and "private-suite.jsonl" in str(record.exc_info[1])


def test_an_expected_refusal_names_no_server_path(bot: Bot, failing_commands) -> None:
    index = bot.new_issue()
    bot.comment("/ssd test-refusing", index=index)
    bot.work()
    [status] = bot.bot_comments(index)
    assert "cannot read $SSD_DATA_DIR/suites/x.jsonl: line 3 is not JSON" in status["body"]
    assert str(bot.settings.data_dir) not in status["body"]


def test_public_text_takes_server_paths_out() -> None:
    text = public_text(
        "open /srv/ssd/data/models/m.gguf; also /usr/lib/python3/x.py and https://h/a/b", "/srv/ssd/data"
    )
    assert text == "open $SSD_DATA_DIR/models/m.gguf; also …/x.py and https://h/a/b"
    assert public_text("/srv/ssd/database/y is not the data dir", "/srv/ssd/data") == "…/y is not the data dir"
    # Reports keep absolute paths that are content (a quoted config line), but never the server's own.
    report = public_text("`open('/etc/app.yaml')` in /srv/ssd/data/cache", "/srv/ssd/data", other_paths=False)
    assert report == "`open('/etc/app.yaml')` in $SSD_DATA_DIR/cache"


# --------------------------------------------------------------------------- bidi controls


def test_bidi_controls_are_shown_not_obeyed() -> None:
    assert neutralize_bidi("ok\u202eevil\u2066x\u200f") == "ok<U+202E>evil<U+2066>x<U+200F>"
    text = "".join(sorted(BIDI_CONTROLS))
    assert not set(neutralize_bidi(text)) & BIDI_CONTROLS
    body = render(Header("/ssd eval model=\u202egguf.exe", "alice", "cmd-1-1"), FAILED, reason="x\u2067y")
    assert not set(body) & BIDI_CONTROLS and "<U+202E>" in body and "<U+2067>" in body


def test_a_reply_echoing_a_command_line_neutralizes_bidi(bot: Bot) -> None:
    index = bot.new_issue()
    bot.comment("/ssd he\u202elp", index=index)
    bot.work()
    [reply] = bot.bot_comments(index)
    assert not set(reply["body"]) & BIDI_CONTROLS
    assert "he<U+202E>lp" in reply["body"]


# --------------------------------------------------------------------------- ssd deliver


def test_ssd_deliver_of_a_missing_file_is_one_clear_line(
    tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ssd.cli import main

    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_WEBHOOK_SECRET", "s")
    rc = main(["deliver", str(tmp_path / "nope.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"ssd deliver: cannot read {tmp_path / 'nope.json'}" in err and "Traceback" not in err
