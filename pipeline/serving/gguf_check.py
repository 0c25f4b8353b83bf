"""Does a GGUF LoRA fit its base? Checked before llama.cpp loads it.

llama-cpp-python 0.3.36 accepts a LoRA whose ``lora_a`` width differs from the base tensor's and then
crashes the whole process on the first token (measured here), which would take the served model down
with it. ``gguf.GGUFReader`` needs ~13 s on the 98 MB SmolLM2 file (it decodes every metadata value,
49k vocabulary strings included), so this reads only the tensor table, skipping metadata by length.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

# GGUF metadata value types -> size in bytes (8 = string and 9 = array are variable)
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


class GGUFFormatError(ValueError):
    """Not a GGUF file this reader understands."""


def tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape in ggml order (ne0 first)} from a GGUF file's header."""
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0

        def take(fmt: str) -> int:
            nonlocal pos
            size = struct.calcsize(fmt)
            if pos + size > len(data):
                raise GGUFFormatError(f"{Path(path).name}: truncated GGUF header")
            (value,) = struct.unpack_from(fmt, data, pos)
            pos += size
            return value

        def skip(size: int) -> None:
            nonlocal pos
            if size < 0 or pos + size > len(data):
                raise GGUFFormatError(f"{Path(path).name}: truncated GGUF header")
            pos += size

        def string() -> str:
            length = take("<Q")
            start = pos
            skip(length)
            return bytes(data[start : start + length]).decode("utf-8", errors="replace")

        def skip_value(kind: int) -> None:
            if kind in _FIXED:
                skip(_FIXED[kind])
            elif kind == _STRING:
                skip(take("<Q"))
            elif kind == _ARRAY:
                item, count = take("<I"), take("<Q")
                if item in _FIXED:
                    skip(_FIXED[item] * count)
                else:
                    for _ in range(count):
                        skip_value(item)
            else:
                raise GGUFFormatError(f"{Path(path).name}: unknown GGUF value type {kind}")

        if bytes(data[:4]) != b"GGUF":
            raise GGUFFormatError(f"{Path(path).name} is not a GGUF file")
        pos = 4
        version = take("<I")
        if version < 2:
            raise GGUFFormatError(f"{Path(path).name}: GGUF version {version} is too old")
        n_tensors, n_kv = take("<Q"), take("<Q")
        for _ in range(n_kv):
            string()
            skip_value(take("<I"))
        shapes: dict[str, tuple[int, ...]] = {}
        for _ in range(n_tensors):
            name = string()
            dims = take("<I")
            if dims > 8:
                raise GGUFFormatError(f"{Path(path).name}: tensor {name} has {dims} dimensions")
            shapes[name] = tuple(take("<Q") for _ in range(dims))
            take("<I")  # type
            take("<Q")  # offset
        return shapes


def check_lora_fits(base: str | Path, lora: str | Path) -> None:
    """Raise ``ValueError`` unless every ``X.lora_a``/``X.lora_b`` pair matches base tensor ``X``:
    ggml order weight [n_in, n_out], lora_a [n_in, r], lora_b [r, n_out]."""
    base_shapes, lora_shapes = tensor_shapes(base), tensor_shapes(lora)
    name_of = Path(lora).name
    pairs = {name.rsplit(".", 1)[0] for name in lora_shapes if name.endswith((".lora_a", ".lora_b"))}
    if not pairs:
        raise ValueError(f"{name_of} has no LoRA tensors")
    for name in sorted(pairs):
        a, b, weight = lora_shapes.get(name + ".lora_a"), lora_shapes.get(name + ".lora_b"), base_shapes.get(name)
        if a is None or b is None or weight is None:
            raise ValueError(f"{name_of}: {name} lacks lora_a, lora_b or a base tensor")
        if len(a) != 2 or len(b) != 2 or len(weight) != 2 or a[0] != weight[0] or b[1] != weight[1] or a[1] != b[0]:
            raise ValueError(f"{name_of}: {name} shapes a={a} b={b} do not fit the base's {weight}")
