#!/usr/bin/env python3
"""Writes the safetensors fixture EnergonCheckpointTests reads, with the independent `safetensors`
package (`pip install safetensors torch`).

    python3 scripts/make_safetensors_fixture.py   # (re)writes Tests/EnergonCheckpointTests/Fixtures/safetensors/

`single.safetensors` holds one tensor of every dtype Energon reads, with values from formulas the
Swift tests recompute; `single.expected.txt` lists name, dtype, shape, absolute data offset, byte
count and FNV-1a 64 hash of the bytes as `safetensors` reports them.
"""
import json
import os
import struct

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EnergonCheckpointTests", "Fixtures", "safetensors")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def tensors():
    """Formulas mirrored in SafetensorsTests.swift."""
    return {
        "f32": (torch.arange(12, dtype=torch.float32) * 0.5 - 1).reshape(3, 4),
        "f16": (torch.arange(6, dtype=torch.float32) * 0.25).to(torch.float16).reshape(2, 3),
        "bf16": (torch.arange(8, dtype=torch.float32) - 4).to(torch.bfloat16).reshape(2, 2, 2),
        "f64": torch.tensor([1.0 / 3.0, -2.5], dtype=torch.float64),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "i16": torch.tensor([-30000, 30000], dtype=torch.int16),
        "i32": torch.arange(5, dtype=torch.int32) * -7,
        "i64": torch.tensor([-(2 ** 40), 2 ** 50], dtype=torch.int64),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(4.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "single.safetensors")
    save_file(tensors(), path, metadata={"format": "pt", "source": "energon fixture"})
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    lines = []
    for name, entry in sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1, kv[0])):
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        data = raw[8 + n + begin: 8 + n + end]
        lines.append(f"{name} {entry['dtype']} {','.join(map(str, entry['shape']))} {8 + n + begin} {end - begin} {fnv1a64(data):016x}")
    with open(os.path.join(OUT, "single.expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(path, len(raw), "bytes")


if __name__ == "__main__":
    main()
