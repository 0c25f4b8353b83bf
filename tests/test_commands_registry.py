"""The command registry: schemas, validation, nearest-command suggestions, permissions, the help table."""

from __future__ import annotations

import pytest

from bot.commands import registry
from bot.commands.builtin import help_table
from bot.commands.parse import parse_line
from bot.commands.registry import Arg, Command, UsageError, boolean, float_list, positive_int
from core.config import Settings


def _noop(ctx, args) -> str:
    return "ok"


SAMPLE = Command(
    name="sample",
    handler=_noop,
    summary="A sample.",
    args=(
        Arg("target", positional=True, required=True, help="what to act on"),
        Arg("t", type=float_list, default=[0.2], help="temperatures"),
        Arg("n", type=positive_int, default=1),
        Arg("mode", choices=("fast", "slow"), default="fast"),
        Arg("dry", type=boolean, default=False),
    ),
    queue="cpu",
)


def validate(text: str) -> dict:
    return SAMPLE.validate(parse_line(text))


def test_usage_line_is_generated_from_the_schema() -> None:
    assert SAMPLE.usage == "/ssd sample <target> [t=X,Y,…] [n=N] [mode=fast|slow] [dry=yes|no]"


def test_defaults_conversion_and_positional_given_by_name() -> None:
    assert validate("/ssd sample x") == {"target": "x", "t": [0.2], "n": 1, "mode": "fast", "dry": False}
    assert validate("/ssd sample target=x t=0.1,0.7 n=3 mode=slow dry=yes") == {
        "target": "x",
        "t": [0.1, 0.7],
        "n": 3,
        "mode": "slow",
        "dry": True,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/ssd sample", "missing required argument `target`"),
        ("/ssd sample x y", "unexpected argument: y"),
        ("/ssd sample x n=0", "`n=0` is not valid"),
        ("/ssd sample x n=two", "`n=two` is not valid"),
        ("/ssd sample x t=hot", "comma-separated numbers"),
        ("/ssd sample x mode=medium", "`mode` must be one of fast, slow"),
        ("/ssd sample x dry=perhaps", "expected yes or no"),
        ("/ssd sample x modes=fast", "unknown argument `modes` (did you mean `mode`?)"),
        ("/ssd sample x colour=red", "unknown argument `colour`; arguments: target, t, n, mode, dry"),
        ("/ssd sample x target=y", "`target` given twice"),
        ("/ssd sample 'x", "No closing quotation"),
    ],
)
def test_bad_arguments_say_why(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate(text)
    assert message in str(caught.value)


def test_schema_mistakes_are_caught_at_registration() -> None:
    with pytest.raises(ValueError, match="queue"):
        Command("x", _noop, "x", queue="tpu")
    with pytest.raises(ValueError, match="permission"):
        Command("x", _noop, "x", permission="maintainer")
    with pytest.raises(ValueError, match="duplicate"):
        Command("x", _noop, "x", args=(Arg("a"), Arg("a")))


def test_a_name_is_registered_once() -> None:
    registry.get("help")  # loads the builtins
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Command("help", _noop, "another help"))


def test_nearest_command_for_typos() -> None:
    assert registry.nearest("hepl") == "help"
    assert registry.nearest("stauts") == "status"
    assert registry.nearest("cancle") == "cancel"
    assert registry.nearest("zzzzzz") is None


def test_builtin_permissions_and_override_from_settings(tmp_path) -> None:
    assert registry.get("help").permission == "read"
    assert registry.get("status").permission == "read"
    assert registry.get("cancel").permission == "write"
    settings = Settings.from_env({"SSD_DATA_DIR": str(tmp_path), "SSD_COMMAND_PERMISSIONS": "status=admin"})
    assert registry.get("status").required_permission(settings) == "admin"
    assert registry.get("help").required_permission(settings) == "read"


def test_help_table_lists_every_registered_command_with_its_arguments_and_permission(tmp_path) -> None:
    settings = Settings.from_env({"SSD_DATA_DIR": str(tmp_path), "SSD_COMMAND_PERMISSIONS": "cancel=admin"})
    table = help_table(settings)
    lines = table.split("\n")
    assert lines[0] == "| Command | Arguments | Who may run it | What it does |"
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert set(rows) == {f"`/ssd {c.name}`" for c in registry.commands()}
    assert "`<job>` (required)" in rows["`/ssd cancel`"]
    assert "repo admins and above" in rows["`/ssd cancel`"]
    assert "readers and above" in rows["`/ssd help`"]
