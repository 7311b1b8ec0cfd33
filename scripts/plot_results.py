#!/usr/bin/env python3
"""Plots and tables from the benchmarks' JSON files, for the README and docs/.

    /usr/bin/python3 scripts/plot_results.py [--json-dir DIR] [--out docs]

Reads every bench_*.json in --json-dir (default: the current directory, where
the benchmarks write them; scripts/run_benchmarks.sh keeps them in docs/data)
or the files given, and writes, for each one:
    <out>/plots/<bench>.png   a chart; its title names the machine
    <out>/results.md          one section per benchmark: the machine, a table of
                              every record and the chart
Each benchmark should record the machine it ran on in a top-level "machine"
field (a string, or an object with "cpu"/"model"/"name"); without it the CPU of
the machine running this script is named instead, marked "(plot time)".

Benchmarks whose schema is known get a purpose-made chart; any other JSON is
still tabulated and charted generically (records = lists of objects, label =
text fields, value = the most telling number), so a schema change degrades
the output instead of breaking it. Needs matplotlib (Debian: python3-matplotlib).
"""

import argparse
import json
import math
import os
import platform
import sys

BENCHES = ["bench_quantize", "bench_kernels", "bench_ffn", "bench_cache", "bench_view"]
# Also plotted when present: stories260K_recall_vs_rank.json (llama2c --recall-json).

# Numeric fields worth charting, best first (matched as substrings of the key).
METRIC_PREFERENCE = [
    "miss_rate", "hit_rate", "relative_rmse", "rmse", "fraction_of_bandwidth", "bandwidth_fraction", "of_bandwidth", "speedup",
    "ratio", "gb_s", "gbps", "bandwidth", "tokens_per_s", "ms", "us", "ns", "seconds", "time",
]


# ---------------------------------------------------------------------------
# The machine


def machine_at_plot_time():
    """CPU model and logical CPU count of the machine running this script."""
    model, cpus = None, 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Hardware", "cpu model") and model is None:
                    model = value.strip()
                if key == "processor":
                    cpus += 1
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    cpus = cpus or os.cpu_count() or 0
    return f"{model}, {cpus} logical CPUs" if cpus else model


def machine_of(data):
    """(description, recorded) of the machine a benchmark file ran on."""
    m = data.get("machine") if isinstance(data, dict) else None
    if isinstance(m, str) and m.strip():
        return m.strip(), True
    if isinstance(m, dict) and m:
        parts = []
        for key in ("cpu", "model", "name", "cpu_model"):
            if isinstance(m.get(key), str):
                parts.append(m[key])
                break
        for key, fmt in (("cores", "{} cores"), ("threads", "{} threads"), ("isa", "kernels {}"),
                         ("read_gb_s", "{:.1f} GB/s read"), ("read_bandwidth_gb_s", "{:.1f} GB/s read"),
                         ("compiler", "{}")):
            value = m.get(key)
            if value is not None:
                try:
                    parts.append(fmt.format(value))
                except (ValueError, TypeError):
                    parts.append(f"{key} {value}")
        if parts:
            return ", ".join(parts), True
        return json.dumps(m, sort_keys=True), True
    return machine_at_plot_time(), False


# ---------------------------------------------------------------------------
# Generic records


def is_scalar(v):
    return isinstance(v, (str, int, float, bool)) or v is None


def explode(record, context):
    """Rows of one record: its scalars, plus those of each nested record list."""
    own = dict(context)
    for k, v in record.items():
        if is_scalar(v):
            own[k if k not in context else f"{k}_"] = v
    nested = [(k, v) for k, v in record.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
    if not nested:
        return [own]
    rows = []
    for _, items in nested:
        for item in items:
            rows.extend(explode(item, own))
    return rows


def record_lists(data, path=""):
    """Every (path, list of dicts) at the top of the JSON tree (not nested in records)."""
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        yield path or "records", data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from record_lists(v, f"{path}.{k}" if path else k)


def columns_of(rows):
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def numeric(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pick_metric(rows, cols):
    nums = [c for c in cols if any(numeric(r.get(c)) for r in rows)]
    for want in METRIC_PREFERENCE:
        for c in nums:
            if want in c.lower():
                return c
    return nums[-1] if nums else None


def fmt(v):
    if isinstance(v, float):
        a = abs(v)
        if a == 0:
            return "0"
        if a >= 1e7 or a < 1e-4:
            return f"{v:.3e}"
        return f"{v:.0f}" if a >= 100 else f"{v:.4g}"
    return "" if v is None else str(v)


def markdown_table(rows, cols, limit=60):
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows[:limit]:
        lines.append("| " + " | ".join(fmt(r.get(c)).replace("|", "\\|") for c in cols) + " |")
    if len(rows) > limit:
        lines.append(f"\n({len(rows) - limit} more rows in the JSON file)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Charts


def new_figure(plt, n_bars):
    return plt.subplots(figsize=(max(6.0, min(16.0, 0.35 * n_bars + 4)), 4.5))


def finish(fig, ax, title, machine, path):
    ax.set_title(f"{title}\n{machine}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def series_points(rows, keys, x, y):
    """{values of the key fields: sorted (x, y) points}, in order of first appearance."""
    out = {}
    for r in rows:
        out.setdefault(tuple(r.get(k, "") for k in keys), []).append((r[x], r[y]))
    return {k: sorted(v) for k, v in out.items()}


def grouped_bars(ax, groups, series, values, ylabel):
    """values[(group, series)] -> bar height; one cluster per group."""
    width = 0.8 / max(1, len(series))
    for j, s in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ys = [values.get((g, s), float("nan")) for g in groups]
        ax.bar(xs, ys, width, label=str(s))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([str(g) for g in groups], rotation=30 if len(groups) > 4 else 0, ha="right")
    ax.set_ylabel(ylabel)
    top = max((v for v in values.values() if numeric(v)), default=0)
    if top > 0:
        ax.set_ylim(0, top * 1.2)  # room for the legend above the bars
    if len(series) > 1:
        ax.legend(fontsize=8, ncol=min(4, len(series)))


def plot_cache(plt, data, machine, path):
    """bench_cache: miss rate of every policy on every trace, Belady's optimum marked."""
    traces = [t for t in data.get("traces", []) if isinstance(t, dict)]
    if not traces or not any(t.get("policies") for t in traces):
        return False
    groups = [t.get("name", f"trace {i}") for i, t in enumerate(traces)]
    series, values = [], {}
    for g, t in zip(groups, traces):
        for p in t.get("policies", []):
            name = p.get("policy")
            if name is None or not numeric(p.get("miss_rate")):
                continue
            if name not in series:
                series.append(name)
            values[(g, name)] = p["miss_rate"]
    if not values:
        return False
    fig, ax = new_figure(plt, len(groups) * (len(series) + 1))
    grouped_bars(ax, groups, series, values, "miss rate (lower is better)")
    belady = [t.get("belady_miss_rate") for t in traces]
    if any(numeric(b) for b in belady):
        for i, b in enumerate(belady):
            if numeric(b):
                ax.hlines(b, i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                          label="Belady (offline optimum)" if i == 0 else None)
        ax.legend(fontsize=8, ncol=min(4, len(series) + 1))
    share = data.get("capacity_share")
    title = "Neuron cache miss rate by policy" + (f" (capacity {share:.0%} of neurons)" if numeric(share) else "")
    finish(fig, ax, title, machine, path)
    plt.close(fig)
    return True


def plot_generic(plt, name, rows, cols, machine, path):
    """Any records: the preferred metric per label (and per series when there are two text fields)."""
    metric = pick_metric(rows, cols)
    if metric is None:
        return False
    text = [c for c in cols if c != metric and all(isinstance(r.get(c), str) or r.get(c) is None for r in rows)
            and len({r.get(c) for r in rows}) > 1]
    usable = [r for r in rows if numeric(r.get(metric))]
    if not usable:
        return False
    if len(text) >= 2 and len({r.get(text[1]) for r in usable}) <= 8:
        group_col, series_col = text[0], text[1]
    else:
        group_col, series_col = None, None
    if group_col:
        groups, series, values = [], [], {}
        for r in usable:
            g, s = r.get(group_col), r.get(series_col)
            groups += [g] if g not in groups else []
            series += [s] if s not in series else []
            values[(g, s)] = r[metric]
        fig, ax = new_figure(plt, len(groups) * len(series))
        grouped_bars(ax, groups, series, values, metric)
    else:
        # Label each bar with its text fields (or its numeric parameters when there are none).
        label_cols = text or [c for c in cols if c != metric][:3]
        labels = [" ".join(fmt(r.get(c)) for c in label_cols) or str(i) for i, r in enumerate(usable)]
        fig, ax = new_figure(plt, len(usable))
        ax.bar(range(len(usable)), [r[metric] for r in usable])
        ax.set_xticks(range(len(usable)))
        ax.set_xticklabels(labels, rotation=45 if len(usable) > 4 else 0, ha="right", fontsize=8)
        ax.set_ylabel(metric)
    finish(fig, ax, f"{name}: {metric}", machine, path)
    plt.close(fig)
    return True


# llama.cpp's formats on N(0,1) weights: (bits per weight, relative RMSE),
# measured with llama.cpp's own quantizers; drawn for reference only.
LLAMA_CPP_FORMATS = {"Q8_0": (8.5, 0.0054), "Q4_K": (4.5, 0.0713), "Q4_1": (5.0, 0.0782),
                     "Q4_0": (4.5, 0.0859), "Q3_K": (3.44, 0.151), "Q2_K": (2.63, 0.297)}


def plot_quantize(plt, data, machine, path):
    """bench_quantize: relative RMSE against bits per weight, one line per data set and method."""
    rows = [r for r in data.get("results", []) if isinstance(r, dict)]
    rows = [r for r in rows if numeric(r.get("bits_per_weight")) and numeric(r.get("relative_rmse"))]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for key, pts in series_points(rows, ("data", "method"), "bits_per_weight", "relative_rmse").items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{key[0]}, {key[1]}")
    ref = [(n, b, e) for n, (b, e) in LLAMA_CPP_FORMATS.items() if e is not None]
    ax.scatter([b for _, b, _ in ref], [e for _, _, e in ref], marker="x", color="gray",
               label="llama.cpp formats, N(0,1)")
    for n, b, e in ref:
        ax.annotate(n, (b, e), textcoords="offset points", xytext=(4, 4), fontsize=7, color="gray")
    ax.set_yscale("log")
    ax.set_xlabel("bits per weight (codes + group parameters + row units)")
    ax.set_ylabel("relative RMSE of the weights (log)")
    ax.legend(fontsize=7)
    finish(fig, ax, "Quantization error against storage", machine, path)
    plt.close(fig)
    return True


def plot_kernels(plt, data, machine, path):
    """bench_kernels: effective bandwidth / read bandwidth against the share of rows touched,
    one panel per code width, one line per kernel and activation type."""
    rows = [r for r in data.get("results", []) if isinstance(r, dict)]
    rows = [r for r in rows if numeric(r.get("fraction")) and numeric(r.get("ratio_to_probe"))]
    if not rows:
        return False
    widths = sorted({r.get("bits") for r in rows if numeric(r.get("bits"))})
    if not widths:
        return False
    cols = min(2, len(widths))
    nrows = (len(widths) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5.5 * cols, 3.8 * nrows), squeeze=False, sharey=True)
    for k, bits in enumerate(widths):
        ax = axes[k // cols][k % cols]
        mine = [r for r in rows if r.get("bits") == bits]
        for key, pts in series_points(mine, ("op", "activations"), "fraction", "ratio_to_probe").items():
            style = "s" if len(pts) == 1 else "o-"
            ax.plot([p[0] * 100 for p in pts], [p[1] for p in pts], style, label=f"{key[0]} ({key[1]})")
        ax.axhline(1.0, color="gray", linestyle=":", linewidth=1)
        ax.set_title(f"{bits}-bit rows", fontsize=9)
        ax.set_xlabel("rows touched (%)")
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("effective / read bandwidth")
        ax.legend(fontsize=7)
    for k in range(len(widths), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    isa = data.get("isa")
    probe = data.get("probe_gbps")
    extra = ", ".join(x for x in (f"kernels {isa}" if isa else "",
                                   f"read bandwidth {probe:.1f} GB/s" if numeric(probe) else "") if x)
    fig.suptitle(f"Kernel bandwidth against the machine's read bandwidth (1.0, dotted)\n{machine}"
                 + (f"; {extra}" if extra else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_ffn(plt, data, machine, path):
    """bench_ffn: time per token against the share of neurons computed, one line per
    selector; the dense layers (float, 8-bit, 4-bit) as horizontal lines."""
    rows = [r for r in data.get("results", []) if isinstance(r, dict) and numeric(r.get("ms_per_token"))]
    if not rows:
        return False
    sparse = [r for r in rows if str(r.get("name", "")).split()[:1] == ["sparse"] and numeric(r.get("active"))]
    dense = [r for r in rows if r not in sparse]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for r in sparse:  # "sparse 4-bit 10% predictor" -> series "sparse 4-bit predictor"
        r["_series"] = " ".join(w for w in str(r["name"]).split() if not w.endswith("%"))
    for key, pts in series_points(sparse, ("_series",), "active", "ms_per_token").items():
        ax.plot([p[0] * 100 for p in pts], [p[1] for p in pts], "o-", label=key[0])
    styles = ["--", "-.", ":"]
    for i, r in enumerate(dense):
        ax.axhline(r["ms_per_token"], color="gray", linestyle=styles[i % len(styles)], linewidth=1,
                   label=f"{r.get('name', 'dense')} ({r['ms_per_token']:.2f} ms)")
    ax.set_yscale("log")
    ax.set_xlabel("neurons computed (% of hidden)")
    ax.set_ylabel("ms per token, one thread (log)")
    ax.legend(fontsize=7)
    shape = ""
    if numeric(data.get("d_model")) and numeric(data.get("hidden")):
        shape = f" (d_model {data['d_model']}, hidden {data['hidden']})"
    finish(fig, ax, f"SwiGLU FFN layer{shape}: time per token", machine, path)
    plt.close(fig)
    return True


def plot_view(plt, data, machine, path):
    """bench_view: kernel time on a view over mapped bytes (aligned and not) over an owned matrix."""
    rows = [r for r in data.get("kernels", []) if isinstance(r, dict)]
    values = {}
    for r in rows:
        for field, label in (("view_over_owned", "view / owned"), ("unaligned_over_owned", "unaligned view / owned")):
            if numeric(r.get(field)):
                values[(r.get("name", "?"), label)] = r[field]
    if not values:
        return False
    groups = [r.get("name", "?") for r in rows]
    fig, ax = new_figure(plt, 3 * len(groups))
    grouped_bars(ax, groups, ["view / owned", "unaligned view / owned"], values, "time ratio (1.0 = owned matrix)")
    ax.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    finish(fig, ax, "Kernels on a zero-copy view against an owned matrix", machine, path)
    plt.close(fig)
    return True


def plot_recall_vs_rank(plt, data, machine, path):
    """llama2c --recall-json: the predictor's recall of the exact top 10% against its rank,
    one line per layer, and the mean over layers with and without least-squares refinement."""
    layers = [l for l in data.get("layers", []) if isinstance(l, dict) and l.get("ranks")]
    if not layers:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.8))
    means = {}
    for l in layers:
        pts = sorted((r["rank"], r["recall_10"]) for r in l["ranks"] if numeric(r.get("recall_10")))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", alpha=0.45, linewidth=1,
                label=f"layer {l.get('layer', '?')}")
        for r in l["ranks"]:
            for key in ("recall_10", "refined_recall_10"):
                if numeric(r.get(key)):
                    means.setdefault(key, {}).setdefault(r["rank"], []).append(r[key])
    for key, label, style in (("recall_10", "mean, truncated SVD", "o-"),
                              ("refined_recall_10", "mean, SVD + least squares", "s--")):
        pts = sorted((k, sum(v) / len(v)) for k, v in means.get(key, {}).items())
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color="black" if key == "recall_10" else "gray",
                    label=label)
    dim = data.get("dim")
    ax.set_xlabel("predictor rank" + (f" (model dim {dim})" if numeric(dim) else ""))
    ax.set_ylabel("recall of the exact top 10% of neurons")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    finish(fig, ax, "stories260K: low-rank predictor recall against rank (real gate matrices)",
           "llama2c --recall-json, 128 greedy tokens (no timings)", path)
    plt.close(fig)
    return True


SPECIFIC = {"stories260K_recall_vs_rank": plot_recall_vs_rank, "bench_cache": plot_cache, "bench_quantize": plot_quantize, "bench_kernels": plot_kernels,
            "bench_ffn": plot_ffn, "bench_view": plot_view}


def run_parameters(data):
    """The top-level scalars (and those of top-level objects) of a benchmark file, as one line."""
    parts = []
    if not isinstance(data, dict):
        return ""
    for k, v in data.items():
        if k in ("machine", "benchmark"):
            continue
        if is_scalar(v) and v is not None:
            parts.append(f"{k} = {fmt(v)}")
        elif isinstance(v, dict):
            parts += [f"{k}.{kk} = {fmt(vv)}" for kk, vv in v.items() if is_scalar(vv) and vv is not None]
    return ", ".join(parts)


# ---------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json-dir", default=".", help="where the bench_*.json files are (default: .)")
    ap.add_argument("--out", default="docs", help="output directory (default: docs)")
    ap.add_argument("files", nargs="*", help="JSON files to use instead of --json-dir/bench_*.json")
    args = ap.parse_args(argv)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("matplotlib is needed: apt-get install python3-matplotlib (and run /usr/bin/python3)")

    if args.files:
        paths = args.files
    else:  # the known benchmarks in a fixed order, then any other bench_*.json
        found = sorted(f for f in os.listdir(args.json_dir) if f.startswith("bench_") and f.endswith(".json"))
        known = [f"{b}.json" for b in BENCHES] + ["stories260K_recall_vs_rank.json"]
        paths = [os.path.join(args.json_dir, f) for f in known + [f for f in found if f not in known]]
    plot_dir = os.path.join(args.out, "plots")
    os.makedirs(plot_dir, exist_ok=True)
    sections, written = [], 0
    for p in paths:
        name = os.path.splitext(os.path.basename(p))[0]
        if not os.path.exists(p):
            print(f"{p}: not found, skipped", file=sys.stderr)
            continue
        try:
            with open(p) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{p}: unreadable JSON ({e}), skipped", file=sys.stderr)
            continue
        machine, recorded = machine_of(data)
        if not recorded:
            machine += " (named at plot time)"
        section = [f"## {name}", "", f"Machine: {machine}", ""]
        params = run_parameters(data)
        if params:
            section += [f"Run: {params}", ""]
        png = os.path.join(plot_dir, f"{name}.png")
        plotted = False
        if name in SPECIFIC:
            plotted = SPECIFIC[name](plt, data, machine, png)
        for path, records in record_lists(data):
            rows = [row for r in records for row in explode(r, {})]
            cols = columns_of(rows)
            if not plotted:
                plotted = plot_generic(plt, name, rows, cols, machine, png)
            section += [f"### {path}", "", markdown_table(rows, cols), ""]
        if plotted:
            written += 1
            section.insert(6 if params else 4, f"![{name}](plots/{name}.png)\n")
            print(f"{png}: written")
        sections.append("\n".join(section))

    if not sections:
        print("no benchmark JSON found; run the benchmarks first (build/bench/bench_*)", file=sys.stderr)
        return 1
    md = os.path.join(args.out, "results.md")
    with open(md, "w") as f:
        f.write("# Benchmark results\n\nGenerated by `scripts/plot_results.py` from the benchmarks' JSON files; "
                "do not edit by hand.\n\n" + "\n\n".join(sections) + "\n")
    print(f"{md}: written ({len(sections)} benchmarks, {written} plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
