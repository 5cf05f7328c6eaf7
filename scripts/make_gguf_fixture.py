#!/usr/bin/env python3
"""Writes the GGUF fixture that EnergonCheckpointTests reads, using the independent `gguf` package
(llama.cpp's gguf-py, `pip install gguf numpy`).

    python3 scripts/make_gguf_fixture.py            # (re)writes Tests/EnergonCheckpointTests/Fixtures/gguf/
    python3 scripts/make_gguf_fixture.py --verify F # reads F with gguf.GGUFReader and prints it

The fixture holds one metadata value of every GGUF value type (plus string, numeric and nested
arrays) and tensors of several dtypes whose values follow simple formulas the Swift tests recompute.
`fixture.expected.txt` lists each tensor's name, dtype, shape (outermost first), absolute data
offset, byte count and FNV-1a 64 hash of its bytes, as gguf-py reports them.
"""
import os
import sys

import numpy as np
import gguf

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EnergonCheckpointTests", "Fixtures", "gguf")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def tensors():
    """Name -> (numpy array, quantization type or None). Formulas mirrored in GGUFFixtureTests.swift."""
    f32 = (np.arange(15, dtype=np.float32) * 0.25 - 3.0).reshape(3, 5)
    f16 = (np.arange(8, dtype=np.float32) * 0.5 - 2.0).astype(np.float16).reshape(2, 4)
    cube = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ids = np.arange(7, dtype=np.int32) * 3 - 5
    q8 = np.sin(np.arange(2 * 64, dtype=np.float32) * 0.1).reshape(2, 64)
    q8_bytes = gguf.quants.quantize(q8, gguf.GGMLQuantizationType.Q8_0)
    q4 = np.cos(np.arange(3 * 32, dtype=np.float32) * 0.2).reshape(3, 32)
    q4_bytes = gguf.quants.quantize(q4, gguf.GGMLQuantizationType.Q4_0)
    return [
        ("token_embd.weight", f32, None),
        ("blk.0.attn_q.weight", f16, None),
        ("blk.0.cube", cube, None),
        ("blk.0.ids", ids, None),
        ("blk.0.ffn_up.weight", q8_bytes, gguf.GGMLQuantizationType.Q8_0),
        ("blk.0.ffn_down.weight", q4_bytes, gguf.GGMLQuantizationType.Q4_0),
    ]


def write(path: str) -> None:
    writer = gguf.GGUFWriter(path, arch="llama")  # writes general.architecture first
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -2000000000)
    writer.add_float32("test.f32", 1.5)
    writer.add_bool("test.bool", True)
    writer.add_string("test.string", "héllo ▁wörld\n")
    writer.add_uint64("test.u64", 18000000000000000000)
    writer.add_int64("test.i64", -9000000000000000000)
    writer.add_float64("test.f64", -2.25)
    writer.add_array("test.strings", ["a", "", "<0x0A>", "▁the"])
    writer.add_array("test.ints", [1, -2, 3])          # gguf-py stores Python ints as i32
    writer.add_array("test.floats", [0.5, -1.25])      # and Python floats as f32
    writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_uint32("llama.context_length", 2048)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    for name, array, qtype in tensors():
        if qtype is None:
            writer.add_tensor(name, array)
        else:
            writer.add_tensor(name, array, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def describe(path: str) -> str:
    reader = gguf.GGUFReader(path)
    lines = []
    for t in reader.tensors:
        data = bytes(np.asarray(t.data).tobytes())
        shape = [int(x) for x in reversed(t.shape.tolist())]
        lines.append(f"{t.name} {t.tensor_type.name} {','.join(map(str, shape))} "
                     f"{t.data_offset} {t.n_bytes} {fnv1a64(data):016x}")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        reader = gguf.GGUFReader(sys.argv[2])
        for field in reader.fields.values():
            print(field.name, [t.name for t in field.types], field.contents() if len(field.data) < 16 else f"<{len(field.data)} values>")
        sys.stdout.write(describe(sys.argv[2]))
        return
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "fixture.gguf")
    write(path)
    with open(os.path.join(OUT, "fixture.expected.txt"), "w") as f:
        f.write(describe(path))
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
