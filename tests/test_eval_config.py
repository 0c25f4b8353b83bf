"""One declaration of the eval settings (``EvalConfig``): the ``ssd eval`` flags, the ``/ssd eval`` arguments
and the reproducibility footer's command all come from it, and the footer reads back to the config it ran."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from bot.commands import registry
from bot.commands.eval import config_values, eval_arg
from bot.commands.parse import parse_comment
from pipeline.audit.measure import MEASURE_DEFAULTS, MEASURE_FIELDS, measure_command
from pipeline.evaluate import EvalConfig
from pipeline.options import dataclass_from_args, format_value, to_args
from pipeline.provenance import eval_command, parse_eval_command, reproducible
from pipeline.training.compare import CompareConfig
from pipeline.training.sample import SampleConfig
from pipeline.types import DEFAULT_MAX_TOKENS, SamplingParams
from ssd.cli import build_parser

ROUND_TRIP = [
    EvalConfig(),
    EvalConfig(suite="basic", temperatures=[0.0, 0.7, 1.3], n=4),
    EvalConfig(suite="/data/suites/my suite.jsonl", limit=3),
    EvalConfig(model="/data/models/tiny.gguf", adapter="/data/adapters/run 1/adapter.gguf", backend="llamacpp"),
    EvalConfig(model="openai:qwen", base_url="http://127.0.0.1:8080/v1", backend="openai"),
    EvalConfig(timeout_s=2.5),
    EvalConfig(timeout_s=600.0),
    EvalConfig(top_p=0.95, top_k=40, min_p=0.05, max_tokens=64),
    EvalConfig(seed=2**31 - 1, temperatures=[0.1 + 0.2]),  # 0.30000000000000004: needs more than :g
    EvalConfig(seed=-3),  # "--seed=-3": a value that reads like a flag
    EvalConfig(gold=True, limit=1),
    EvalConfig(suite="issues.jsonl", retrieval="bm25", limit=5),
]


@pytest.mark.parametrize("cfg", ROUND_TRIP, ids=lambda cfg: eval_command(cfg).removeprefix("ssd eval "))
def test_the_footer_command_reads_back_to_the_config(cfg: EvalConfig) -> None:
    command = eval_command(cfg)
    assert parse_eval_command(command) == cfg
    # ... and it is a command the real `ssd eval` parser takes, meaning the same config
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.command == "eval"
    assert dataclass_from_args(EvalConfig, args) == cfg


def test_the_footer_command_reads_as_before() -> None:
    cfg = EvalConfig(suite="basic", temperatures=[0.0, 0.7], n=2, limit=3, timeout_s=2.0)
    assert eval_command(cfg) == (
        "ssd eval --suite basic --model smollm2 --temperature 0,0.7 --n 2 --seed 0 "
        "--top-p 1 --top-k 0 --min-p 0 --max-tokens 512 --limit 3 --timeout 2"
    )
    assert eval_command(EvalConfig(gold=True)) == "ssd eval --suite humaneval --gold"


def test_the_footer_leaves_out_how_a_run_was_carried_out() -> None:
    """Workers, caches and output files do not change what was measured, and a gold run samples nothing:
    the footer leaves them out, and reading it back gives the config with those at their defaults."""
    ran = EvalConfig(
        suite="basic",
        n=3,
        temperatures=[0.5],
        workers=2,
        n_threads=1,
        batch_size=4,
        cache_dir="/srv/cache",
        repo_cache_dir="/srv/repos",
        samples_out="/tmp/s.jsonl",
        unsafe_execution=True,
    )
    command = eval_command(ran)
    assert "/srv" not in command and "--workers" not in command and "samples" not in command
    assert parse_eval_command(command) == reproducible(ran) == EvalConfig(suite="basic", n=3, temperatures=[0.5])
    gold = EvalConfig(gold=True, temperatures=[0.7], n=5, model="other", limit=2)
    assert parse_eval_command(eval_command(gold)) == reproducible(gold) == EvalConfig(gold=True, limit=2)


def test_parse_refuses_what_is_not_an_eval_command() -> None:
    with pytest.raises(ValueError, match="not an `ssd eval` command"):
        parse_eval_command("ssd score --suite basic")
    with pytest.raises(ValueError, match="unrecognized arguments"):
        parse_eval_command("ssd eval --workers-of-the-world 1")
    with pytest.raises(ValueError, match="must be >= 1"):
        parse_eval_command("ssd eval --n 0")


# ---------------------------------------------------------------- the CLI flags


def test_ssd_eval_defaults_are_the_declared_ones() -> None:
    args = build_parser().parse_args(["eval"])
    assert dataclass_from_args(EvalConfig, args) == EvalConfig()
    # the names people type stay the parsed names
    assert (args.temperature, args.threads, args.timeout) == ([0.0], None, None)
    assert build_parser().parse_args(["eval", "-t", "0.2,0.8"]).temperature == [0.2, 0.8]


@pytest.mark.parametrize(
    "flags",
    [
        ["--n", "0"],
        ["--limit", "0"],
        ["--max-tokens", "0"],
        ["--workers", "0"],
        ["--threads", "0"],
        ["--temperature", "0.5,-1"],
        ["--temperature", ","],
        ["--backend", "vllm"],
        ["--retrieval", "grep"],
    ],
)
def test_ssd_eval_refuses_what_the_config_refuses(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", *flags])
    assert flags[0] in capsys.readouterr().err


def test_the_config_checks_its_declared_bounds() -> None:
    for bad in ({"max_tokens": 0}, {"workers": 0}, {"limit": 0}, {"timeout_s": 601}):
        with pytest.raises(ValueError):
            EvalConfig(**bad)


def test_ssd_score_shares_the_execution_flags() -> None:
    args = build_parser().parse_args(
        ["score", "--samples", "s.jsonl", "--suite", "basic", "--workers", "2", "--timeout", "3", "--cache-dir", "c"]
    )
    assert (args.suite, args.workers, args.timeout, args.cache_dir) == ("basic", 2, 3.0, "c")
    assert not hasattr(args, "temperature")  # nothing is sampled


def test_one_max_tokens_default() -> None:
    assert (
        EvalConfig().max_tokens
        == SampleConfig().max_tokens
        == CompareConfig().max_tokens
        == SamplingParams().max_tokens
        == DEFAULT_MAX_TOKENS
    )
    assert (
        registry.get("eval").args[[a.name for a in registry.get("eval").args].index("max_tokens")].default
        == DEFAULT_MAX_TOKENS
    )


# ---------------------------------------------------------------- the comment arguments

# What a comment may set, on purpose: never a path, URL, worker count or cache (bot/commands/eval.py).
COMMENT_FIELDS = {
    "suite",
    "gold",
    "model",
    "backend",
    "adapter",
    "temperatures",
    "n",
    "seed",
    "top_p",
    "top_k",
    "min_p",
    "max_tokens",
    "retrieval",
    "limit",
    "timeout_s",
}


def test_only_the_declared_comment_fields_are_arguments_of_ssd_eval() -> None:
    declared = {f.name for f in dataclasses.fields(EvalConfig) if "arg" in f.metadata}
    assert declared == COMMENT_FIELDS
    by_arg = {f.metadata["arg"]: f for f in dataclasses.fields(EvalConfig) if "arg" in f.metadata}
    names = [arg.name for arg in registry.get("eval").args]
    assert set(names) - {"since", "rebuild"} == set(by_arg)
    for arg in registry.get("eval").args:
        if arg.name in by_arg and arg.name != "model":  # model: None = the server's SSD_MODEL
            assert arg.default == dataclasses.asdict(EvalConfig())[by_arg[arg.name].name], arg.name
    for name in {f.name for f in dataclasses.fields(EvalConfig)} - COMMENT_FIELDS:
        with pytest.raises(ValueError, match="cannot be set from a comment"):
            eval_arg(name)


def test_a_comment_fills_the_config_fields_it_names() -> None:
    [parsed] = parse_comment(
        "/ssd eval t=0,0.7 n=2 seed=5 top_p=0.9 top_k=40 min_p=0.1 max_tokens=64 "
        "backend=llamacpp gold=yes timeout=2.5 retrieval=bm25 limit=3"
    )
    values = config_values(registry.get("eval").validate(parsed))
    cfg = EvalConfig(**values)
    assert cfg == EvalConfig(
        temperatures=[0.0, 0.7],
        n=2,
        seed=5,
        top_p=0.9,
        top_k=40,
        min_p=0.1,
        max_tokens=64,
        backend="llamacpp",
        gold=True,
        timeout_s=2.5,
        retrieval="bm25",
        limit=3,
        model=cfg.model,
    )
    assert values["model"] is None  # resolved by the handler, under the data dir
    assert "since" not in values and "rebuild" not in values


def test_help_comes_from_the_declaration() -> None:
    help_of = {arg.name: arg.help for arg in registry.get("eval").args}
    assert help_of["n"] == EvalConfig.__dataclass_fields__["n"].metadata["help"]
    assert help_of["backend"] == "default: chosen from the model"
    assert "$SSD_DATA_DIR/models" in help_of["model"]  # a comment's model lives under the data dir


# ---------------------------------------------------------------- the audit's measure command


MEASURE_FLAGS = (*MEASURE_FIELDS, "backend", "base_url")


@pytest.mark.parametrize(
    "cfg",
    [
        EvalConfig(model="smollm2", suite="basic", n=2, limit=10, temperatures=[0.2, 0.7]),
        EvalConfig(
            model="/m/tiny.gguf",
            suite="/s/issues.jsonl",
            n=1,
            limit=None,
            seed=3,
            max_tokens=64,
            temperatures=[1.0],
            backend="llamacpp",
        ),
    ],
)
def test_the_audit_measure_command_reads_back(cfg: EvalConfig) -> None:
    command = measure_command("CHECKOUT", cfg)
    assert command.startswith("ssd audit --path CHECKOUT --measure --model ")
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.measure and args.t == [format_value(t) for t in cfg.temperatures]
    assert dataclass_from_args(EvalConfig, args, only=MEASURE_FLAGS, temperatures=cfg.temperatures) == cfg


def test_ssd_audit_takes_its_own_measure_defaults() -> None:
    args = build_parser().parse_args(["audit"])
    cfg = dataclass_from_args(EvalConfig, args, only=MEASURE_FLAGS)
    assert (cfg.suite, cfg.n, cfg.limit) == (
        MEASURE_DEFAULTS["suite"],
        MEASURE_DEFAULTS["n"],
        MEASURE_DEFAULTS["limit"],
    )
    defaults = {arg.name: arg.default for arg in registry.get("audit").args}
    assert {name: defaults[name] for name in MEASURE_DEFAULTS} == MEASURE_DEFAULTS


# ---------------------------------------------------------------- the helper


@dataclasses.dataclass
class _Flags:
    on: bool = True
    ratio: float = 0.5
    names: list[str] = dataclasses.field(default_factory=list)


def test_to_args_writes_only_what_differs_unless_asked() -> None:
    assert to_args(_Flags(), ["on", "ratio", "names"]) == []
    assert to_args(_Flags(on=False, ratio=1e-5, names=["a", "b"]), ["on", "ratio", "names"]) == [
        "--no-on",
        "--ratio",
        "1e-05",
        "--names",
        "a,b",
    ]
    assert to_args(_Flags(), ["ratio"], always={"ratio"}) == ["--ratio", "0.5"]
    assert to_args(_Flags(ratio=-0.25), ["ratio"]) == ["--ratio=-0.25"]
