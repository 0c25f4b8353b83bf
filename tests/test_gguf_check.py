"""The GGUF tensor-table reader and the LoRA fit check, on GGUF files written here with gguf's writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.serving.gguf_check import GGUFFormatError, check_lora_fits, tensor_shapes

pytestmark = pytest.mark.slow  # the gguf writer and numpy come with the ML stack


def write_gguf(path: Path, tensors: dict[str, np.ndarray], adapter: bool = False) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(300)])  # string arrays are skipped by length
    writer.add_array("some.floats", [0.5] * 10)
    if adapter:
        writer.add_type("adapter")
        writer.add_float32("adapter.lora.alpha", 4.0)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    # numpy (n_out, n_in) is ggml [n_in, n_out]
    return write_gguf(
        tmp_path / "base.gguf",
        {"blk.0.ffn_down.weight": np.zeros((8, 24), np.float32), "blk.0.attn_q.weight": np.zeros((8, 8), np.float32)},
    )


def lora(tmp_path: Path, n_in: int = 24, rank: int = 2, name: str = "blk.0.ffn_down.weight") -> Path:
    return write_gguf(
        tmp_path / f"lora-{n_in}-{rank}-{name}.gguf",
        {f"{name}.lora_a": np.zeros((rank, n_in), np.float32), f"{name}.lora_b": np.zeros((8, rank), np.float32)},
        adapter=True,
    )


def test_shapes_match_what_gguf_itself_reads(tmp_path, base):
    import gguf

    path = lora(tmp_path)
    expected = {t.name: tuple(int(x) for x in t.shape) for t in gguf.GGUFReader(str(path)).tensors}
    assert (
        tensor_shapes(path)
        == expected
        == {"blk.0.ffn_down.weight.lora_a": (24, 2), "blk.0.ffn_down.weight.lora_b": (2, 8)}
    )
    assert tensor_shapes(base)["blk.0.ffn_down.weight"] == (24, 8)


def test_a_fitting_lora_passes_and_misfits_are_named(tmp_path, base):
    check_lora_fits(base, lora(tmp_path))
    with pytest.raises(ValueError, match="do not fit"):
        check_lora_fits(base, lora(tmp_path, n_in=10))
    with pytest.raises(ValueError, match="lacks"):
        check_lora_fits(base, lora(tmp_path, name="blk.9.ffn_down.weight"))
    with pytest.raises(ValueError, match="no LoRA tensors"):
        check_lora_fits(base, base)


def test_not_gguf_or_truncated_is_a_format_error(tmp_path, base):
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(GGUFFormatError, match="not a GGUF"):
        tensor_shapes(text)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(base.read_bytes()[:200])
    with pytest.raises(GGUFFormatError, match="truncated"):
        tensor_shapes(cut)
