#!/usr/bin/env python3
"""Writes the GGUF quantization fixtures under Tests/EnergonCoreTests/Fixtures/quants/.

The expected bytes and floats come from the `gguf` Python package (`gguf.quants.quantize` /
`gguf.quants.dequantize`), which mirrors ggml's reference quantizers, so EnergonCore is checked
against an implementation it shares no code with. Q8_1 and Q8_K have no gguf-py decoder; their
expected floats are `d * q` computed here with numpy from ggml's block definitions.

gguf-py has no K-quant encoders, so the quantize-Q2_K ... quantize-Q6_K fixtures come from ggml
itself: with GGML_BASE_LIB=/path/to/libggml-base.a (any llama.cpp build; ggml's reference
quantizers live in ggml-base and are compiled without FMA, so every build gives the same bytes)
the script compiles a tiny C driver against it and records `quantize_row_q*_K_ref`'s output.
Without GGML_BASE_LIB those fixtures are left as they are. The committed ones were made with the
ggml vendored in llama-cpp-python 0.3.36 (llama.cpp 0c1e570, ggml 0.25.3).

Files (all little-endian, no headers):
  quantize-<TYPE>.f32    float32 inputs
  quantize-<TYPE>.bin    gguf.quants.quantize(inputs, TYPE) bytes
  dequantize-<TYPE>.bin  random valid blocks (random bytes with sane scale fields)
  dequantize-<TYPE>.f32  the decoded float32 values

Run: python3 scripts/make_quant_fixtures.py   (needs numpy and gguf; deterministic seed)
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/EnergonCoreTests/Fixtures/quants"
RNG = np.random.default_rng(20260128)


def f32_from_bits(bits: list[int]) -> np.ndarray:
    return np.array(bits, dtype=np.uint32).view(np.float32)


def block_inputs(blocks: int) -> np.ndarray:
    """Float rows of 32-element blocks that reach the rounding and tie-breaking corners."""
    rows = []
    rows.append(np.zeros(32, np.float32))                                     # all zero: d = 0
    rows.append(np.full(32, 0.75, np.float32))                                # constant
    rows.append(np.full(32, -3.0, np.float32))                                # constant negative
    rows.append(np.arange(-16, 16, dtype=np.float32))                         # exact ties for Q4/Q5
    halves = np.array([127.0] + [k + 0.5 for k in range(-16, 15)], np.float32)
    rows.append(halves)                                                       # x * id = k.5 for Q8_0
    tie = RNG.normal(size=32).astype(np.float32)
    tie[3], tie[9] = -5.0, 5.0                                                # |max| tie: first wins
    rows.append(tie)
    tie = RNG.normal(size=32).astype(np.float32)
    tie[3], tie[9] = 5.0, -5.0
    rows.append(tie)
    rows.append((RNG.normal(size=32) * 1e-6).astype(np.float32))              # f16-subnormal scales
    rows.append((RNG.normal(size=32) * 3e5).astype(np.float32))               # scales that overflow f16
    outlier = RNG.normal(size=32).astype(np.float32)
    outlier[17] = 40.0
    rows.append(outlier)
    rows.append(RNG.uniform(0.5, 2.0, size=32).astype(np.float32))            # all positive (Q4_1 min > 0)
    while len(rows) < blocks:
        scale = 10.0 ** RNG.uniform(-4, 3)
        kind = len(rows) % 3
        if kind == 0:
            row = RNG.normal(size=32) * scale
        elif kind == 1:
            row = RNG.uniform(-scale, scale, size=32)
        else:
            row = RNG.standard_t(3, size=32) * scale
        rows.append(row.astype(np.float32))
    return np.concatenate(rows[:blocks]).astype(np.float32)


def half_inputs(count: int) -> np.ndarray:
    """Floats for F16/BF16 rounding: specials, exact ties and a wide spread of exponents."""
    specials = f32_from_bits([
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000,      # zeros and infinities
        0x7FC00000, 0xFFC00000, 0x7FC02000,                  # quiet NaNs (one with payload)
        0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001,      # 65504, just under/at/over the inf tie
        0x33800000, 0x33000000, 0x33000001, 0x33C00000,      # 2^-24, 2^-25 (tie to 0), 1.5 * 2^-24
        0x38800000, 0x387FC000, 0x387FE000,                  # smallest normal half, subnormal ties
        0x3F801000, 0x3F803000, 0x3F801001,                  # 1 + 2^-11 (tie), 1 + 3 * 2^-11 (tie up)
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF,      # bf16 ties and near-ties
        0x00000001, 0x007FFFFF, 0x80400000,                  # f32 subnormals
        0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000,                  # f32 max (bf16 rounds it to inf), a tie
    ])
    exponents = RNG.uniform(-30, 18, size=count - len(specials))
    spread = (RNG.choice([-1.0, 1.0], size=exponents.size) * 2.0 ** exponents
              * RNG.uniform(1, 2, size=exponents.size)).astype(np.float32)
    return np.concatenate([specials, spread]).astype(np.float32)


def random_half(count: int, low: float, high: float, signed: bool = True) -> np.ndarray:
    """f16 bytes of magnitudes 2^uniform(low, high), random sign when `signed`."""
    values = 2.0 ** RNG.uniform(low, high, size=count)
    if signed:
        values *= RNG.choice([-1.0, 1.0], size=count)
    return values.astype(np.float16).view(np.uint8).reshape(count, 2)


# Byte offsets of each format's f16 scale fields within a block.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.Q8_1: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def type_size(qtype: T) -> int:
    # gguf-py still lists Q8_1 as 40 bytes (f32 d and s); ggml's block_q8_1 has been f16 d,
    # f16 s, 32 x int8 = 36 bytes for a long time, and that is what GGUF files hold.
    return 36 if qtype == T.Q8_1 else GGML_QUANT_SIZES[qtype][1]


def random_blocks(qtype: T, blocks: int) -> np.ndarray:
    size = type_size(qtype)
    data = RNG.integers(0, 256, size=(blocks, size), dtype=np.uint8)
    for offset in HALF_FIELDS.get(qtype, []):
        data[:, offset:offset + 2] = random_half(blocks, -14, 2)
    if qtype == T.Q8_K:
        d = (2.0 ** RNG.uniform(-14, 2, size=blocks) * RNG.choice([-1.0, 1.0], size=blocks)).astype(np.float32)
        data[:, 0:4] = d.view(np.uint8).reshape(blocks, 4)
    return data


def decode_plain_q8(qtype: T, data: np.ndarray) -> np.ndarray:
    """d * q for Q8_1 (f16 d, f16 s, 32 x i8) and Q8_K (f32 d, 256 x i8, 16 x i16 sums)."""
    if qtype == T.Q8_1:
        d = data[:, 0:2].copy().view(np.float16).astype(np.float32)
        q = data[:, 4:36].copy().view(np.int8).astype(np.float32)
    else:
        d = data[:, 0:4].copy().view(np.float32)
        q = data[:, 4:260].copy().view(np.int8).astype(np.float32)
    return (d * q).astype(np.float32).reshape(-1)


def k_block_inputs(blocks: int) -> np.ndarray:
    """256-value super-blocks for the K-quant encoders' corner cases and ordinary data."""
    rows = [np.zeros(256, np.float32), np.full(256, 1.5, np.float32)]
    row = RNG.normal(size=256)
    row[np.arange(256) // 32 == 3] = 0                                         # one zero sub-block
    rows.append(row.astype(np.float32))
    rows.append(RNG.uniform(0.1, 3.0, size=256).astype(np.float32))            # all positive
    rows.append((RNG.normal(size=256) * 0.02 + 0.05).astype(np.float32))       # offset, small scale
    rows.append((RNG.standard_t(2, size=256) * 3).astype(np.float32))          # heavy tails
    rows.append(((np.arange(256) % 9) - 4).astype(np.float32) * 0.25)          # integer grid
    while len(rows) < blocks:
        rows.append((RNG.normal(size=256) * 10.0 ** RNG.uniform(-3, 2)).astype(np.float32))
    return np.concatenate(rows[:blocks])


GGML_DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void quantize_row_q2_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q3_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q5_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q6_K_ref(const float *x, void *y, int64_t k);
/* usage: driver TYPE COUNT < floats > bytes */
int main(int argc, char **argv) {
    int64_t n = atoll(argv[2]);
    float *x = malloc(n * 4);
    unsigned char *y = calloc(n, 2);
    if (fread(x, 4, n, stdin) != (size_t)n) return 2;
    size_t bytes;
    if (!strcmp(argv[1], "Q2_K")) { quantize_row_q2_K_ref(x, y, n); bytes = n / 256 * 84; }
    else if (!strcmp(argv[1], "Q3_K")) { quantize_row_q3_K_ref(x, y, n); bytes = n / 256 * 110; }
    else if (!strcmp(argv[1], "Q4_K")) { quantize_row_q4_K_ref(x, y, n); bytes = n / 256 * 144; }
    else if (!strcmp(argv[1], "Q5_K")) { quantize_row_q5_K_ref(x, y, n); bytes = n / 256 * 176; }
    else if (!strcmp(argv[1], "Q6_K")) { quantize_row_q6_K_ref(x, y, n); bytes = n / 256 * 210; }
    else return 3;
    fwrite(y, 1, bytes, stdout);
    return 0;
}
"""


def ggml_k_fixtures(library: str) -> None:
    """quantize-<K type> fixtures from ggml's own reference encoders."""
    with tempfile.TemporaryDirectory() as folder:
        source = pathlib.Path(folder) / "driver.c"
        source.write_text(GGML_DRIVER)
        driver = pathlib.Path(folder) / "driver"
        subprocess.run(["cc", "-O2", "-c", str(source), "-o", str(source.with_suffix(".o"))], check=True)
        subprocess.run(["c++", str(source.with_suffix(".o")), library, "-lm", "-lpthread", "-fopenmp",
                        "-o", str(driver)], check=True)
        for qtype in [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
            inputs = k_block_inputs(8)
            result = subprocess.run([str(driver), qtype.name, str(inputs.size)], input=inputs.tobytes(),
                                    capture_output=True, check=True)
            write(f"quantize-{qtype.name}.f32", inputs)
            (OUTPUT / f"quantize-{qtype.name}.bin").write_bytes(result.stdout)


def write(name: str, array: np.ndarray) -> None:
    (OUTPUT / name).write_bytes(np.ascontiguousarray(array).tobytes())


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)

    # Encoders: floats in, gguf-py's bytes out.
    for qtype in [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]:
        inputs = block_inputs(32)
        with np.errstate(over="ignore"):
            encoded = quantize(inputs.reshape(1, -1), qtype)
        write(f"quantize-{qtype.name}.f32", inputs)
        write(f"quantize-{qtype.name}.bin", encoded)
    for qtype in [T.F16, T.BF16]:
        inputs = half_inputs(1024)
        with np.errstate(over="ignore", invalid="ignore"):
            encoded = quantize(inputs.reshape(1, -1), qtype)
        write(f"quantize-{qtype.name}.f32", inputs)
        write(f"quantize-{qtype.name}.bin", encoded.view(np.uint8))

    # Decoders: random valid blocks in, decoded floats out.
    for qtype in [T.F16, T.BF16]:
        bits = RNG.integers(0, 1 << 16, size=2048, dtype=np.uint32).astype(np.uint16)
        with np.errstate(invalid="ignore"):
            decoded = dequantize(bits.view(np.uint8), qtype)
        write(f"dequantize-{qtype.name}.bin", bits)
        write(f"dequantize-{qtype.name}.f32", decoded.astype(np.float32))
    for qtype in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q8_1,
                  T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K, T.Q8_K]:
        block_size, _ = GGML_QUANT_SIZES[qtype]
        data = random_blocks(qtype, 2048 // block_size)
        if qtype in (T.Q8_1, T.Q8_K):
            decoded = decode_plain_q8(qtype, data)
        else:
            decoded = dequantize(data.reshape(1, -1), qtype).reshape(-1)
        write(f"dequantize-{qtype.name}.bin", data)
        write(f"dequantize-{qtype.name}.f32", decoded.astype(np.float32))

    library = os.environ.get("GGML_BASE_LIB")
    if library:
        ggml_k_fixtures(library)
    else:
        print("GGML_BASE_LIB not set: keeping the existing quantize-Q*_K fixtures")

    total = sum(path.stat().st_size for path in OUTPUT.iterdir())
    print(f"wrote {len(list(OUTPUT.iterdir()))} files, {total} bytes, to {OUTPUT}")


if __name__ == "__main__":
    main()
