"""The static temperature audit on the fixture repo (every format, tricky cases) and on junk and limits.

The fixture's expected findings are listed in full (tests/audit_fixture.py): the test fails on a missing finding
and on any extra one.
Symlinks and oversized/deep trees are made at test time in a copy (git checkouts treat symlinks unevenly).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.audit import Limits, SourceFile, audit_files, audit_path, scan_file
from pipeline.audit.measure import current_temperature
from pipeline.audit.report import summary_line
from ssd.cli import main
from tests.audit_fixture import EXPECTED, EXPECTED_COMPOSITE_AND_DOCS, FIXTURE, rows


def test_fixture_findings_are_exactly_the_expected_ones() -> None:
    result = audit_path(str(FIXTURE))
    found = rows(result)
    assert found - EXPECTED == set(), "unexpected findings"
    assert EXPECTED - found == set(), "missing findings"
    assert len(result.findings) == len(EXPECTED)  # no duplicates either


def test_fixture_details_notes_and_env_values() -> None:
    by_place = {(f.path, f.line, f.key): f for f in audit_path(str(FIXTURE)).findings}
    merged = by_place[("configs/sampling.yaml", 3, "evaluation.top_p")]
    assert merged.note == "via *defaults" and merged.number == 0.95  # the line is the anchored value's line
    assert by_place[("configs/sampling.yaml", 10, "synthesis.temperature")].note == ""  # local key wins the merge
    resolved = by_place[("app/agent.py", 16, "client.chat.completions.create(temperature=)")]
    assert resolved.value == 0.2 and resolved.note == "via TEMPERATURE (line 7)"
    env = by_place[("app/agent.py", 17, "client.chat.completions.create(top_p=)")]
    assert (env.value, env.env_var, env.env_default, env.number) == (None, "AGENT_TOP_P", "0.95", 0.95)
    dynamic = by_place[("app/agent.py", 29, "client.chat.completions.create(temperature=)")]
    assert dynamic.value is None and dynamic.number is None and dynamic.expr == "float(f'0.{level}')"
    shell = by_place[("scripts/serve.sh", 7, "--temperature")]
    assert (shell.env_var, shell.env_default, shell.format) == ("SERVE_TEMPERATURE", "0.7", "shell")
    greedy = by_place[("scripts/run_eval.py", 13, "model.generate()")]
    assert greedy.implicit and greedy.number == 0 and "greedy" in greedy.note
    assert by_place[("models/Modelfile.eval", 1, "(no PARAMETER temperature)")].note.startswith("Ollama default")
    from_cli = by_place[("scripts/run_eval.py", 12, "model.generate(temperature=)")]
    assert from_cli.value == 0.6 and from_cli.note.startswith("default of --temperature (line 6)")


def test_fixture_flags() -> None:
    flags = audit_path(str(FIXTURE)).flags
    kinds = [f.kind for f in flags]
    assert kinds.count("teval_equals_ttrain") == 1
    [same] = [f for f in flags if f.kind == "teval_equals_ttrain"]
    assert ("configs/sampling.yaml", 10) in same.places and ("configs/sampling.yaml", 15) in same.places
    assert ("scripts/synth.py", 7) in same.places and ".env:4" in same.message
    [greedy] = [f for f in flags if f.kind == "greedy_retry"]
    assert greedy.places == (("configs/agent.toml", 6),)  # run_eval.py's greedy generate() does not retry
    [extreme] = [f for f in flags if f.kind == "extreme"]
    assert extreme.places == (("configs/sampling.yaml", 15),)  # 1.6 for eval; the 1.6 T_train is fine
    inconsistent = {f.message.split("`")[1]: f for f in flags if f.kind == "inconsistent_model"}
    assert set(inconsistent) == {"huggingfacetb/smollm2-135m-instruct", "qwen2.5-coder:7b", "smollm2", "smollm2.gguf"}
    coder = [f for f in flags if f.kind == "inconsistent_model" and "qwen2.5-coder:7b" in f.message]
    assert len(coder) == 1 and {p for p, _ in coder[0].places} == {
        "configs/agent.toml",
        "Modelfile",
        "models/coder.Modelfile",
        "deploy/llm.service",
    }
    undefined = sorted(f.message.split("`")[1] for f in flags if f.kind == "undefined_env")
    # AGENT_TEMPERATURE and BENCH_TEMPERATURE are defined (compose environment, workflow env): not flagged.
    assert undefined == ["AGENT_TOP_P", "SERVE_TEMPERATURE"]
    assert len(flags) == 10


def test_fixture_junk_is_skipped_with_reasons() -> None:
    result = audit_path(str(FIXTURE))
    assert dict(result.stats.skipped) == {
        "binary": 1,
        "invalid json": 1,
        "invalid yaml": 1,
        "invalid python": 1,
        "not a config or source file": 1,
    }
    assert not any(f.path.startswith(("configs/broken", "configs/cache", "scripts/legacy")) for f in result.findings)
    assert set(result.runtimes) == {"llamacpp", "ollama", "openai", "transformers", "vllm"}


def test_symlinks_huge_and_deep_files_never_crash(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    outside = tmp_path / "outside.yaml"
    outside.write_text("temperature: 0.9\n")
    os.symlink(root, root / "loop")  # a directory loop: never descended
    os.symlink(outside, root / "configs" / "outside.yaml")  # leaves the root: never read
    os.symlink(root / "nowhere.yaml", root / "dangling.yaml")
    os.symlink(root / "Modelfile", root / "models" / "Modelfile.link")  # inside the root: read under its own path
    (root / "configs" / "huge.yaml").write_text("temperature: 0.5\n" + "# padding\n" * 200_000)
    deep = root.joinpath(*[f"d{i}" for i in range(12)])
    deep.mkdir(parents=True)
    (deep / "deep.yaml").write_text("temperature: 0.4\n")
    result = audit_path(str(root), Limits(max_file_bytes=512 * 1024, max_depth=8))
    skipped = result.stats.skipped
    assert skipped["symlinked directory"] == 1 and skipped["symlink outside the root"] == 1
    assert skipped["broken symlink"] == 1 and skipped["too large"] == 1 and skipped["too deep"] == 1
    assert "max_depth" in result.stats.caps_hit
    paths = {f.path for f in result.findings}
    assert "models/Modelfile.link" in paths
    assert not paths & {"configs/outside.yaml", "configs/huge.yaml", "dangling.yaml"}
    assert not any(p.startswith(("loop/", "d0/")) for p in paths)
    assert rows(result) - EXPECTED == {r for r in rows(result) if r[0] == "models/Modelfile.link"}


def test_file_and_byte_caps_are_reported(tmp_path: Path) -> None:
    result = audit_path(str(FIXTURE), Limits(max_files=3))
    assert result.stats.read == 3 and result.stats.skipped["file cap reached"] > 0
    assert "max_files" in result.stats.caps_hit
    result = audit_path(str(FIXTURE), Limits(max_total_bytes=1500))
    assert result.stats.bytes_read <= 1500 and "max_total_bytes" in result.stats.caps_hit


def scan(path: str, text: str):
    result = audit_files([SourceFile(path, text.encode())])
    return result.findings, result


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("a.yaml", "temp: /tmp/cache\nretriever:\n  top_k: 5\nsearch_top_p: 0.5\n"),  # a path; retrieval knobs
        ("b.sh", "runner -t 8 -c 4096 -n 128 --threads 2\n# --temp 0.1 in a comment\necho '--temp 5'\n"),
        ("c.toml", '[tool]\ntemperature_unit = "celsius"\nseed = 1\n'),  # a word value; a seed without sampling
        ("d.py", "import random\nrandom.seed(0)\nrng = make_rng(seed=3)\nprint('temperature: 0.7')\n"),
        ("e.json", '{"seed": 3, "max_tokens": 10}'),  # no sampling parameter next to them
        ("f.env", "MAX_TOKENS=100\nSEED=4\n"),
        ("g.ini", "[db]\n; temperature = 0.3\n#top_p = 0.2\nseed = 9\n"),
    ],
)
def test_no_false_findings(path: str, text: str) -> None:
    findings, _ = scan(path, text)
    assert findings == []


def test_short_flags_are_not_sampling_settings() -> None:
    # llama.cpp's -t is threads, -c context, -n tokens: only the server's default temperature is reported.
    findings, _ = scan("serve.sh", "llama-server -m x.gguf -t 8 -c 4096 -n 128\n")
    assert [(f.param, f.value, f.implicit) for f in findings] == [("temperature", 0.8, True)]


def test_yaml_alias_bomb_and_recursion_are_skipped() -> None:
    bomb = "a: &a [temperature, temperature]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12)
    )
    _, result = scan("bomb.yaml", bomb)
    assert result.stats.skipped["yaml expands to too many nodes"] == 1
    findings, _ = scan("rec.yaml", "a: &a\n  temperature: 0.5\n  self: *a\n")
    assert [(f.key, f.line) for f in findings] == [("a.temperature", 2)]


def test_plain_alias_and_sequence_merge() -> None:
    text = (
        "t: &t 0.3\nbase: &base {top_p: 0.9}\nother: &other {top_k: 7}\n"
        "serve:\n  temperature: *t\n  <<: [*base, *other]\n"
    )
    findings, _ = scan("s.yaml", text)
    got = {(f.key, f.line, f.display, f.note) for f in findings}
    assert ("serve.temperature", 1, "0.3", "via *t") in got
    assert ("serve.top_p", 2, "0.9", "via *base") in got and ("serve.top_k", 3, "7", "via *other") in got


def test_json_and_toml_line_numbers() -> None:
    findings, _ = scan("x.json", '{\n "a": {\n  "b": [\n   {"temperature": 0.25},\n   {"top_p":\n     0.5}]}}')
    assert [(f.key, f.line) for f in findings] == [("a.b.[0].temperature", 4), ("a.b.[1].top_p", 6)]
    toml = "temperature = 0.1\n[eval]\nname = 'x'\ntemperature = 0.2\n[train]\ntemperature = 1.5\n"
    findings, _ = scan("x.toml", toml)
    assert [(f.key, f.line, f.role) for f in findings] == [
        ("temperature", 1, None),
        ("eval.temperature", 4, "eval"),
        ("train.temperature", 6, "train"),
    ]


def test_python_resolution_and_env() -> None:
    text = """import os
from openai import OpenAI
T = float(os.environ["EVAL_T"])
BASE = 0.4
ALIAS = BASE
def run(client, temperature=0.9):
    client.chat.completions.create(model="m", temperature=temperature)
    client.chat.completions.create(model="m", temperature=ALIAS, **extra)
    client.chat.completions.create(model="m", temperature=T)
    client.chat.completions.create(model="m", **extra)
    subprocess.run(["llama-server", "--temp", str(T), "--top-k", "40"])
class Cfg:
    top_p: float = 0.8
"""
    findings, result = scan("svc.py", text)
    got = {(f.line, f.key, f.display, f.env_var) for f in findings}
    assert (7, "client.chat.completions.create(temperature=)", "0.9", None) in got  # a parameter default
    assert (8, "client.chat.completions.create(temperature=)", "0.4", None) in got  # two names deep
    assert (9, "client.chat.completions.create(temperature=)", "T = float(os.environ['EVAL_T'])", "EVAL_T") in got
    assert (11, "--temp", "$EVAL_T", "EVAL_T") in got and (11, "--top-k", "40", None) in got
    assert (13, "Cfg.top_p", "0.8", None) in got
    assert not any(f.line == 10 for f in findings)  # **extra may set it: no "unset" claim
    assert len(findings) == 6
    [flag] = [f for f in result.flags if f.kind == "undefined_env"]
    assert "EVAL_T" in flag.message and "KeyError" in flag.message


def test_role_inference_prefers_the_innermost_context() -> None:
    findings, _ = scan("eval/config.yaml", "train:\n  temperature: 1.5\nsampler:\n  temperature: 0.6\n")
    assert [(f.key, f.role) for f in findings] == [("train.temperature", "train"), ("sampler.temperature", "eval")]


def test_binary_and_undecodable_files() -> None:
    assert scan_file(SourceFile("x.yaml", b"temperature: 0.5\n\x00\x01")) is None
    assert scan_file(SourceFile("x.yaml", "temperature: 0.5\n".encode("utf-16"))) is None
    assert scan_file(SourceFile("x.png", b"\x89PNG")) is None


def test_cli_text_json_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--path", str(FIXTURE)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Temperature audit of ") and "Flags:" in text and "configs/sampling.yaml:15" in text
    assert main(["audit", "--path", str(FIXTURE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["findings"]) == len(EXPECTED) and len(data["flags"]) == 10
    assert data["stats"]["skipped"]["binary"] == 1 and data["defaults"]["ollama"]["values"]["temperature"] == 0.8
    assert main(["audit", "--path", str(FIXTURE), "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("### Temperature audit") and "<details>" in markdown and "**Flags**" in markdown
    assert main(["audit", "--path", str(FIXTURE / "nope")]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_python_attributes_and_fields_resolve_in_their_function() -> None:
    text = """from dataclasses import dataclass, field
@dataclass
class GenConfig:
    temperature: float = field(default=1.0, metadata={"help": "sampling"})
class Sampler:
    def __init__(self, temperature=0.9):
        self.temperature = temperature
"""
    findings, _ = scan("synth/config.py", text)
    got = {(f.line, f.key, f.display, f.note, f.role) for f in findings}
    assert got == {
        (4, "GenConfig.temperature", "1.0", "field default", "train"),
        (7, "self.temperature", "0.9", "default of parameter 'temperature' of __init__() (line 6)", "train"),
    }


def test_readme_run_instructions_are_documentation(capsys: pytest.CaptureFixture[str]) -> None:
    result = audit_path(str(FIXTURE))
    readme = [f for f in result.findings if f.path == "README.md"]
    assert {(f.path, f.line, f.key) for f in readme} == {
        r[:3] for r in EXPECTED_COMPOSITE_AND_DOCS if r[0] == "README.md"
    }
    assert all(f.documentation and f.format == "markdown" and f.to_dict()["documentation"] for f in readme)
    assert not any(f.documentation for f in result.findings if f.path != "README.md")
    # Prose (line 1), the ```python example (line 18) and the server without --temp (line 22, no default
    # claimed for documentation) give nothing.
    assert not {f.line for f in readme} & {1, 18, 22}
    assert "+ 7 in documentation (run instructions)" in summary_line(result)
    assert main(["audit", "--path", str(FIXTURE)]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith("README.md:7 ")]
    assert line.endswith("[documentation]")


def test_documentation_counts_for_the_current_setting(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Serve\n\n```console\n$ llama-server -m m.gguf --temp 0.4\n```\n")
    current, why = current_temperature(audit_path(str(tmp_path)))
    assert current == 0.4 and why.endswith("README.md:4 (documentation)")
    (tmp_path / "serve.sh").write_text("llama-server -m m.gguf --temp 0.4\n")
    assert current_temperature(audit_path(str(tmp_path)))[1].endswith("serve.sh:1")  # configuration shown first


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "run.sh",
            'python eval.py --sampling_params "temperature=0.9,top_p=0.8,top_k=20"\n',
            {
                (1, "--sampling_params[temperature]", "0.9"),
                (1, "--sampling_params[top_p]", "0.8"),
                (1, "--sampling_params[top_k]", "20"),
            },
        ),
        (
            "run.sh",
            "python search_eval.py \\\n  --sampling-params=temperature=0.6,top_k=5 --seed 1\n",
            {(2, "--sampling-params[temperature]", "0.6"), (2, "--sampling-params[top_k]", "5")},
        ),  # the owner decides
        (
            "serve.sh",
            'vllm serve m --override-generation-config \'{"temperature": 0.6, "top_p": 0.95}\'\n',
            {
                (1, "--override-generation-config[temperature]", "0.6"),
                (1, "--override-generation-config[top_p]", "0.95"),
            },
        ),
        (
            "eval.yaml",
            "eval:\n  sampling_params: \"temperature=0.6;top_p=0.95\"\n  env: ['TEMP=0.3']\n",
            {
                (2, "eval.sampling_params[temperature]", "0.6"),
                (2, "eval.sampling_params[top_p]", "0.95"),
                (3, "eval.env.[0].TEMP", "0.3"),
            },
        ),
        (
            "eval.py",
            'import subprocess\nGEN = """{\n  "temperature": 0.6,\n  "top_k": 20\n}"""\n'
            'subprocess.run(["python", "x.py", "--sampling_params", "temperature=0.2,top_p=0.9"])\n',
            {
                (3, "GEN[temperature]", "0.6"),
                (4, "GEN[top_k]", "20"),
                (6, "--sampling_params[temperature]", "0.2"),
                (6, "--sampling_params[top_p]", "0.9"),
            },
        ),
    ],
)
def test_composite_strings(path: str, text: str, expected: set[tuple]) -> None:
    findings, _ = scan(path, text)
    assert {(f.line, f.key, f.display) for f in findings} == expected
    assert len(findings) == len(expected) and not any(f.documentation for f in findings)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("p.py", 'log.info("Using temperature=0.7 for eval")\nx = "temperature=hot,top_p=high"\n'),  # prose, words
        (
            "q.py",
            '"""Example: {"temperature": 0.7}"""\nparser.add_argument("--p", help=\'e.g. {"temperature": 0.6}\')\n',
        ),
        ("r.py", 'name = f"temperature={t},top_p=0.9"\nkeys = "seed=3,max_tokens=10"\n'),  # f-string part; no sampling
        (
            "s.md",
            "Use temperature=0.7 and `--threads 4`.\n\n```python\nrun(temperature=0.2)\n```\n\n```bash\n"
            "ollama run llama3\n```\n",
        ),  # prose, another language, a server's default (not claimed in docs)
        ("t.md", "```bash\npython x.py --temperature 0.3\n"),  # an unclosed fence is not a code block
    ],
)
def test_no_false_composite_or_documentation_findings(path: str, text: str) -> None:
    findings, _ = scan(path, text)
    assert findings == []
