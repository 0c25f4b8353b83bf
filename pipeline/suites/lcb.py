"""LiveCodeBench import: ``code_generation_lite`` JSONL rows the user already has on disk.

No download happens here (the machine may be offline); point at the release files, e.g. the
``test.jsonl`` .. ``test6.jsonl`` of the Hugging Face dataset ``livecodebench/code_generation_lite``,
or a folder holding them. The SSD paper's "LCB v6" is ``?since=2025-02&until=2025-05``
(apple/ml-ssd ``evaluation/benchmark.py``: contest_date months 2025-02..2025-05).

Row format (LiveCodeBench ``lcb_runner/benchmarks/code_generation.py``): ``question_content``,
``starter_code``, ``difficulty``, ``public_test_cases`` (JSON text), ``private_test_cases`` (JSON
text, or in ``_lite`` base64(zlib(pickle(JSON text)))), ``metadata`` (JSON text, ``func_name`` for
LeetCode-style problems), ``contest_date``, ``platform``, ``question_id``.

Test types, as LCB's ``testing_util.py`` runs them: with ``func_name`` the problem is call-based
(a LeetCode ``class Solution`` method; each test input is one JSON value per line = the positional
arguments, the output one JSON value); otherwise stdin/stdout. Public and private tests are both
graded, public first (LCB's ``get_evaluation_sample``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pipeline.suites import Suite, SuiteError, sha256_file
from pipeline.types import DIFFICULTIES, Problem, TestCase, TestSpec

LCB_TIMEOUT_S = 6.0  # LCB's per-test limit (testing_util timeout=6), kept for comparability
MAX_DECOMPRESSED_BYTES = 1 << 30  # private tests of one problem; a bound against zip bombs


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickles only plain data (str, bytes, numbers, list, dict, tuple, bool, None).

    Those are encoded with dedicated opcodes and never reach ``find_class``; anything that names a
    class or function (the way pickle runs code) is refused, so a crafted file cannot execute.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a test-case payload")


def decode_private_tests(text: str) -> list[dict]:
    """Plain JSON as in ``code_generation``, or base64+zlib+pickle as in ``code_generation_lite``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            compressed = base64.b64decode(text.encode("ascii"), validate=True)
            inflater = zlib.decompressobj()
            raw = inflater.decompress(compressed, MAX_DECOMPRESSED_BYTES)
            if inflater.unconsumed_tail:
                raise ValueError(f"private tests exceed {MAX_DECOMPRESSED_BYTES} bytes decompressed")
            if not inflater.eof:
                raise ValueError("truncated zlib stream")
            value = _NoGlobalsUnpickler(io.BytesIO(raw)).load()
        except (ValueError, zlib.error, pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"private_test_cases: neither JSON nor base64/zlib/pickle ({exc})") from exc
        if isinstance(value, bytes | str):
            value = json.loads(value)
    if not isinstance(value, list):
        raise ValueError("test cases must be a JSON list")
    return value


def _json_field(row: dict, name: str, default: Any) -> Any:
    value = row.get(name, default)
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else default
    return value


def _call_case(test: dict) -> TestCase:
    # LCB: inputs = [json.loads(line) for line in input.split("\n")]; output = json.loads(output)
    # (a trailing newline, which LCB's own files do not have, is tolerated rather than parsed as "")
    args = [json.loads(line) for line in test["input"].rstrip("\n").split("\n")]
    output = test["output"]
    json.loads(output)  # must be JSON; fail on this row now rather than in the grader later
    return TestCase(input=json.dumps(args), output=output)


def to_problem(row: dict) -> Problem:
    """One LCB row -> Problem; raises ValueError/KeyError/json errors on a malformed row."""
    metadata = _json_field(row, "metadata", {})
    fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
    tests = list(_json_field(row, "public_test_cases", []))
    private = row.get("private_test_cases") or "[]"
    tests += decode_private_tests(private) if isinstance(private, str) else list(private)
    if not tests:
        raise ValueError("no test cases")
    for test in tests:
        if (
            not isinstance(test, dict)
            or not isinstance(test.get("input"), str)
            or not isinstance(test.get("output"), str)
        ):
            raise ValueError("each test case needs string 'input' and 'output'")
    if fn_name:
        spec = TestSpec(
            kind="call", cases=tuple(_call_case(t) for t in tests), fn_name=fn_name, timeout_s=LCB_TIMEOUT_S
        )
    else:
        spec = TestSpec(
            kind="stdio",
            cases=tuple(TestCase(t["input"], t["output"]) for t in tests),
            timeout_s=LCB_TIMEOUT_S,
        )
    difficulty = row.get("difficulty")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    return Problem(
        task_id=f"lcb/{row['question_id']}",
        prompt=row["question_content"],
        tests=spec,
        entry_point=fn_name,
        starter_code=row.get("starter_code") or None,
        difficulty=difficulty,
        style="lcb",
        metadata={
            "platform": row.get("platform"),
            "contest_id": row.get("contest_id"),
            "contest_date": row.get("contest_date"),
            "question_title": row.get("question_title"),
            "public_tests": len(_json_field(row, "public_test_cases", [])),
            "lcb_functional": bool(fn_name),
        },
    )


def _in_window(date: str, since: str | None, until: str | None) -> bool:
    """Prefix comparison, so ``until=2025-05`` includes all of May and ``since=2025`` all of 2025."""
    if since and date[: len(since)] < since:
        return False
    return not (until and date[: len(until)] > until)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise SuiteError(f"{path}: no *.jsonl files (expected LiveCodeBench test*.jsonl)")
        return files
    if not path.exists():
        raise SuiteError(f"{path}: no such file")
    return [path]


def load(path: str | Path, since: str | None = None, until: str | None = None) -> Suite:
    """Load LCB rows from a file or folder, keeping problems whose contest_date is in [since, until]."""
    files = _files(Path(path).expanduser())
    problems: list[Problem] = []
    errors: list[tuple[int | str, str]] = []
    seen: set[str] = set()
    for file in files:
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{file.name}:{number}" if len(files) > 1 else number
                try:
                    row = json.loads(line)
                    if not _in_window(str(row.get("contest_date") or ""), since, until):
                        continue
                    problem = to_problem(row)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    errors.append((where, reason))
                    continue
                if problem.task_id not in seen:  # release files are disjoint; overlap is harmless
                    seen.add(problem.task_id)
                    problems.append(problem)
    if errors:
        raise SuiteError(f"{path}: {len(errors)} bad LiveCodeBench row(s)", errors)
    if not problems:
        raise SuiteError(f"{path}: no problems (check the since/until window)")
    window = "".join(f"&{k}={v}" for k, v in (("since", since), ("until", until)) if v).lstrip("&")
    name = Path(path).name + (f"?{window}" if window else "")
    if len(files) == 1:
        digest = sha256_file(files[0])
    else:
        listing = "".join(f"{f.name}\0{sha256_file(f)}\n" for f in files)
        digest = hashlib.sha256(listing.encode()).hexdigest()
    return Suite(id=f"lcb:{name}", problems=problems, sha256=digest)


def load_spec(spec: str) -> Suite:
    """``PATH[?since=YYYY-MM[-DD]&until=YYYY-MM[-DD]]`` as accepted by ``load_suite("lcb:...")``."""
    path, _, query = spec.partition("?")
    try:
        options = {key: values[-1] for key, values in parse_qs(query, strict_parsing=bool(query)).items()}
    except ValueError as exc:
        raise SuiteError(f"lcb suite options: cannot parse {query!r} ({exc})") from exc
    unknown = set(options) - {"since", "until"}
    if unknown:
        raise SuiteError(f"lcb suite options: unknown {', '.join(sorted(unknown))} (use since=, until=)")
    return load(path, since=options.get("since"), until=options.get("until"))
