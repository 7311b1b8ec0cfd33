#!/usr/bin/env python3
"""The per-path kernel table: one row per kernel path from docs/data/bench_kernels.<isa>.json
(bench_kernels run with SPARSEINFER_ISA=<isa>; scripts/run_benchmarks.sh writes them).
Prints Markdown: each kernel as a share of the reference measured in the same run (the better
of the read probe and Eigen's float GEMV with native flags), plus the ratios the kernel bars
are stated in. Usage: scripts/kernel_paths.py [--json-dir docs/data] [--out docs/kernel_paths.md]"""
import argparse
import glob
import json
import os


def pick(results, bits, op, act, frac):
    for r in results:
        if r["bits"] == bits and r["op"] == op and r["activations"] == act and abs(r["fraction"] - frac) < 1e-9:
            return r
    return None


def row(d):
    res = d["results"]
    cells = {}

    def share(bits, op, act, frac):
        r = pick(res, bits, op, act, frac)
        return r["ratio_to_probe"] if r else None

    for bits in (4, 8):
        cells[f"{bits}b int8"] = share(bits, "gemv", "int8", 1.0)
        cells[f"{bits}b f32"] = share(bits, "gemv", "f32", 1.0)
    cells["10% rows int8"] = share(4, "gemv_rows", "int8", 0.1)
    cells["10% rows f32"] = share(4, "gemv_rows", "f32", 0.1)
    rr = pick(res, 4, "read_rows", "-", 0.1)
    cells["10% read_rows"] = rr["ratio_to_probe"] if rr else None
    ax, gq, gf = (pick(res, 4, o, a, 0.1) for o, a in (("axpy_rows", "f32"), ("gemv_rows", "int8"), ("gemv_rows", "f32")))
    cells["axpy/gemv_rows (int8, f32)"] = (gq["ms"] / ax["ms"], gf["ms"] / ax["ms"]) if ax and gq and gf else None
    d4 = pick(res, 4, "gemv", "int8", 1.0)
    for b in (2, 3):
        r = pick(res, b, "gemv", "int8", 1.0)
        rf, d4f = pick(res, b, "gemv", "f32", 1.0), pick(res, 4, "gemv", "f32", 1.0)
        cells[f"{b}b/4b time (int8, f32)"] = (r["ms"] / d4["ms"], rf["ms"] / d4f["ms"]) if r and d4 and rf and d4f else None
    return cells


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, tuple):
        return " / ".join(f"{x:.2f}" for x in v)
    return f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json-dir", default="docs/data")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.json_dir, "bench_kernels.*.json")))
    if not files:
        raise SystemExit(f"no bench_kernels.<isa>.json in {a.json_dir}")
    rows = []
    for f in files:
        d = json.load(open(f))
        rows.append((d, row(d)))
    d0 = rows[0][0]
    cols = list(rows[0][1].keys())
    lines = [f"Machine: {d0.get('machine', '?')}; one thread, 11008 x 4096, weights from DRAM; "
             f"reference {d0['probe_gbps']:.1f} GB/s (the better of a {d0.get('read_probe_gbps', 0):.1f} GB/s read "
             f"and Eigen's float GEMV at {d0.get('eigen_gemv_gbps', 0):.1f} GB/s, native flags). "
             "Shares of the reference (by thread CPU time); ratios as stated.",
             "",
             "| path | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    for d, cells in rows:
        lines.append(f"| {d['isa']} | " + " | ".join(fmt(cells[c]) for c in cols) + " |")
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as o:
            o.write(text)
    print(text, end="")


if __name__ == "__main__":
    main()
