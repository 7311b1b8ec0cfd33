#!/usr/bin/env python3
"""Writes tests/data/gguf_reference.gguf, the independent reference the GGUF tests hold sparseinfer to.

Everything here is built from the GGUF and ggml block-format descriptions with numpy, sharing no
code with the library:

- tensors of hand-built blocks (F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) with random codes and scales
  that include outliers (scales up to 60000, fp16 subnormals, negative scales), each followed by
  an F32 tensor "expected.<name>" holding its decode, computed here in float32 in the order ggml
  computes it;
- "source", a matrix of floats with edge cases (outliers, ties of the rounding rules, zeros and
  negative zero, tiny values), and "ref.q4_0", "ref.q8_0", "ref.f16": those floats quantized by
  numpy transcriptions of ggml's reference quantizers (quantize_row_q4_0_ref, quantize_row_q8_0_ref,
  round-to-nearest-even fp16), which GgufWriter's bytes must equal;
- "unsupported.q5_k", a Q5_K tensor (random bytes), which the reader must refuse by name;
- metadata of every value type, arrays of each, an array of strings, nested arrays, an empty
  array, and general.alignment = 64 (not the default 32).

Run from the repository root (needs numpy; Debian: python3-numpy):
    /usr/bin/python3 scripts/gguf_reference.py tests/data/gguf_reference.gguf
"""
import struct
import sys

import numpy as np

F32 = np.float32
RNG = np.random.default_rng(20261207)

# GGUF value types
U8, I8, U16, I16, U32, I32, F32T, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32T: "<f", BOOL: "<?",
              U64: "<Q", I64: "<q", F64: "<d"}
# ggml type ids
T_F32, T_F16, T_Q4_0, T_Q4_1, T_Q8_0, T_Q4_K, T_Q5_K, T_Q6_K = 0, 1, 2, 3, 8, 12, 13, 14
BLOCK = {T_F32: (1, 4), T_F16: (1, 2), T_Q4_0: (32, 18), T_Q4_1: (32, 20), T_Q8_0: (32, 34),
         T_Q4_K: (256, 144), T_Q5_K: (256, 176), T_Q6_K: (256, 210)}


def gguf_string(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def encode_value(vtype, value):
    if vtype == STR:
        return gguf_string(value)
    if vtype == ARR:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(encode_value(etype, v) for v in items)
    return struct.pack(SCALAR_FMT[vtype], value)


def write_gguf(path, metadata, tensors, alignment):
    """metadata: [(key, type, value)]; tensors: [(name, ggml type, rows, cols, bytes)]."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, vtype, value in metadata:
        out += gguf_string(key) + struct.pack("<I", vtype) + encode_value(vtype, value)
    offset, data = 0, bytearray()
    for name, ttype, rows, cols, raw in tensors:
        block_values, block_bytes = BLOCK[ttype]
        assert cols % block_values == 0 and len(raw) == rows * cols // block_values * block_bytes
        out += gguf_string(name) + struct.pack("<IQQIQ", 2, cols, rows, ttype, offset)
        data += raw + bytes((-len(raw)) % alignment)
        offset = len(data)
    out += bytes((-len(out)) % alignment)
    with open(path, "wb") as f:
        f.write(bytes(out + data))


def f16_bits(values):
    """float32 -> fp16 bits, round to nearest even (numpy's conversion)."""
    return np.asarray(values, dtype=F32).astype(np.float16).view(np.uint16)


def f16_value(bits):
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(F32)


def scales_f16(n):
    """fp16 scales with outliers: ordinary, large, fp16 subnormal, negative, zero."""
    pool = [0.0123, -0.5, 1.0, 60000.0, -1024.0, 2.0 ** -20, -(2.0 ** -24), 3.0e-5, 0.0, 7.75]
    return f16_bits([pool[i % len(pool)] * (1.0 if i < len(pool) else float(RNG.uniform(0.5, 2.0)))
                     for i in range(n)])


# ----- hand-built blocks and their decodes -----

def q4_0_blocks(nb):
    d = scales_f16(nb)
    qs = RNG.integers(0, 256, size=(nb, 16), dtype=np.uint8)
    raw = b"".join(struct.pack("<H", int(d[i])) + qs[i].tobytes() for i in range(nb))
    lo, hi = (qs & 0x0F).astype(np.int32) - 8, (qs >> 4).astype(np.int32) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(F32) * f16_value(d)[:, None]
    return raw, vals.astype(F32).ravel()


def q4_1_blocks(nb):
    d, m = scales_f16(nb), scales_f16(nb + 3)[3:]
    qs = RNG.integers(0, 256, size=(nb, 16), dtype=np.uint8)
    raw = b"".join(struct.pack("<HH", int(d[i]), int(m[i])) + qs[i].tobytes() for i in range(nb))
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(F32)
    vals = q * f16_value(d)[:, None] + f16_value(m)[:, None]
    return raw, vals.astype(F32).ravel()


def q8_0_blocks(nb):
    d = scales_f16(nb)
    qs = RNG.integers(-128, 128, size=(nb, 32), dtype=np.int8)
    qs[0, :4] = [-128, 127, 0, -1]
    raw = b"".join(struct.pack("<H", int(d[i])) + qs[i].tobytes() for i in range(nb))
    return raw, (qs.astype(F32) * f16_value(d)[:, None]).astype(F32).ravel()


def q4_k_scale_min(sc12, j):
    """Sub-block j's 6-bit scale and min codes from the 12 packed bytes."""
    if j < 4:
        return sc12[j] & 63, sc12[j + 4] & 63
    return (sc12[j + 4] & 0x0F) | ((sc12[j - 4] >> 6) << 4), (sc12[j + 4] >> 4) | ((sc12[j] >> 6) << 4)


def q4_k_blocks(nb):
    d, dmin = scales_f16(nb + 3)[3:], scales_f16(nb + 5)[5:]
    vals = []
    raw = b""
    for i in range(nb):
        sc12 = RNG.integers(0, 256, size=12, dtype=np.uint8)
        qs = RNG.integers(0, 256, size=128, dtype=np.uint8)
        raw += struct.pack("<HH", int(d[i]), int(dmin[i])) + sc12.tobytes() + qs.tobytes()
        dd, mm = f16_value(d[i]), f16_value(dmin[i])
        for j in range(8):  # sub-block j: 32 bytes qs[32 (j // 2):], low nibbles for even j, high for odd
            sc, m = (F32(v) for v in q4_k_scale_min([int(b) for b in sc12], j))
            chunk = qs[32 * (j // 2):32 * (j // 2) + 32]
            q = (chunk & 0x0F if j % 2 == 0 else chunk >> 4).astype(F32)
            vals.append(F32(dd * sc) * q - F32(mm * m))
    return raw, np.concatenate(vals).astype(F32)


def q6_k_blocks(nb):
    d = scales_f16(nb + 2)[2:]
    vals = []
    raw = b""
    for i in range(nb):
        q6 = RNG.integers(0, 64, size=256, dtype=np.uint8)  # the 6-bit codes, in value order
        sc = RNG.integers(-128, 128, size=16, dtype=np.int8)
        sc[:2] = [-128, 127]
        ql, qh = np.zeros(128, np.uint8), np.zeros(64, np.uint8)
        for v in range(256):  # value v: half h, position l in 0..31, quarter k in 0..3
            h, r = divmod(v, 128)
            k, l = divmod(r, 32)
            ql[64 * h + l + 32 * (k % 2)] |= (q6[v] & 0x0F) << (4 * (k // 2))
            qh[32 * h + l] |= (q6[v] >> 4) << (2 * k)
        raw += ql.tobytes() + qh.tobytes() + sc.tobytes() + struct.pack("<H", int(d[i]))
        dd = f16_value(d[i])
        scale_of = np.array([sc[8 * (v // 128) + (v % 32) // 16 + 2 * ((v % 128) // 32)] for v in range(256)])
        vals.append(F32(dd) * scale_of.astype(F32) * (q6.astype(np.int32) - 32).astype(F32))
    return raw, np.concatenate(vals).astype(F32)


def f16_values():
    """fp16 edge cases: ties (to even), subnormals, the largest finite, signed zeros."""
    v = [1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, -(1.0 + 2.0 ** -11), 65504.0, 65519.0, -65504.0,
         2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -14 - 2.0 ** -25, 0.0, -0.0, 1e-30, 0.1, -3.14159]
    v += list(RNG.standard_normal(64 - len(v)) * 10.0)
    return np.array(v, dtype=F32)


# ----- numpy transcriptions of ggml's reference quantizers -----

def ref_q4_0(x):
    out = b""
    for blk in x.reshape(-1, 32):
        a = np.abs(blk)
        i = int(np.argmax(a))  # the first of equal magnitudes
        mx = blk[i] if a[i] > 0 else F32(0.0)  # ggml keeps max = +0 when every |v| is 0
        d = F32(mx) / F32(-8.0)
        inv = F32(1.0) / d if d != 0 else F32(0.0)
        codes = np.minimum(15, np.trunc((blk * inv).astype(F32) + F32(8.5)).astype(np.int32))
        out += f16_bits([d]).tobytes() + (codes[:16] | (codes[16:] << 4)).astype(np.uint8).tobytes()
    return out


def ref_q8_0(x):
    out = b""
    for blk in x.reshape(-1, 32):
        d = F32(np.max(np.abs(blk))) / F32(127.0)
        inv = F32(1.0) / d if d != 0 else F32(0.0)
        v = (blk * inv).astype(F32).astype(np.float64)
        codes = np.sign(v) * np.floor(np.abs(v) + 0.5)  # C's roundf: halves away from zero
        out += f16_bits([d]).tobytes() + codes.astype(np.int8).tobytes()
    return out


def source_matrix():
    """6 rows x 64: each row is two blocks of 32 with a different edge case."""
    rows = [RNG.standard_normal(64)]
    r = RNG.standard_normal(64) * 0.01
    r[5] = 100.0  # outlier
    r[40] = -250.0
    rows.append(r)
    # Q4_0 block with max -8 (d = 1): codes hit x + 8.5 exactly at integers; Q8_0 block with amax 127
    # (d = 1): halves that round away from zero.
    rows.append(np.concatenate([np.array([-8.0 + 0.5 * k for k in range(32)]),
                                np.array([127.0] + [(k - 15) + 0.5 for k in range(31)])]))
    rows.append(np.concatenate([np.zeros(32), np.array([-0.0] * 16 + [0.0] * 16)]))
    rows.append(np.concatenate([RNG.standard_normal(32) * 1e-6, RNG.standard_normal(32) * 1e-30]))
    r = RNG.standard_normal(64)
    r[0], r[1], r[32], r[33] = 3.0, -3.0, -7.0, 7.0  # equal magnitudes: the first wins
    rows.append(r)
    return np.array(rows, dtype=F32)


def main(path):
    src = source_matrix()
    tensors = [("source", T_F32, src.shape[0], src.shape[1], src.tobytes()),
               ("ref.q4_0", T_Q4_0, 6, 64, ref_q4_0(src.ravel())),
               ("ref.q8_0", T_Q8_0, 6, 64, ref_q8_0(src.ravel())),
               ("ref.f16", T_F16, 6, 64, f16_bits(src.ravel()).tobytes())]
    fv = f16_values()
    blocks = {"f16": (T_F16, 2, 32, (f16_bits(fv).tobytes(), f16_value(f16_bits(fv)))),
              "q4_0": (T_Q4_0, 2, 64, q4_0_blocks(4)),
              "q4_1": (T_Q4_1, 2, 64, q4_1_blocks(4)),
              "q8_0": (T_Q8_0, 2, 64, q8_0_blocks(4)),
              "q4_k": (T_Q4_K, 2, 256, q4_k_blocks(2)),
              "q6_k": (T_Q6_K, 2, 256, q6_k_blocks(2))}
    for name, (ttype, rows, cols, (raw, expected)) in blocks.items():
        tensors.append((name, ttype, rows, cols, raw))
        tensors.append(("expected." + name, T_F32, rows, cols, expected.astype(F32).tobytes()))
    tensors.append(("unsupported.q5_k", T_Q5_K, 1, 256, RNG.integers(0, 256, 176, dtype=np.uint8).tobytes()))
    metadata = [
        ("general.architecture", STR, "llama"),
        ("general.alignment", U32, 64),
        ("test.u8", U8, 200), ("test.i8", I8, -100), ("test.u16", U16, 60000), ("test.i16", I16, -30000),
        ("test.u32", U32, 4000000000), ("test.i32", I32, -2000000000), ("test.f32", F32T, 0.15625),
        ("test.bool", BOOL, True), ("test.string", STR, "héllo\x00world"), ("test.u64", U64, 2 ** 64 - 1),
        ("test.i64", I64, -(2 ** 63)), ("test.f64", F64, -1.0e300),
        ("test.array.u8", ARR, (U8, [0, 1, 255])), ("test.array.i16", ARR, (I16, [-32768, 32767])),
        ("test.array.f32", ARR, (F32T, [1.5, -2.25])), ("test.array.bool", ARR, (BOOL, [True, False, True])),
        ("test.array.i64", ARR, (I64, [-1, 2 ** 62])), ("test.array.f64", ARR, (F64, [0.5])),
        ("test.array.empty", ARR, (U32, [])),
        ("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "", "▁the"])),
        ("test.array.nested", ARR, (ARR, [(I32, [1, -2]), (I32, []), (I32, [3])])),
        ("test.array.nested_strings", ARR, (ARR, [(STR, ["a"]), (STR, ["b", "cd"])])),
    ]
    write_gguf(path, metadata, tensors, alignment=64)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/gguf_reference.gguf")
