#!/usr/bin/env python3
"""Markdown tables of the medians in a scripts/bench result directory (nn.json, train.json, control.json,
maml.json, memory.json; any may be missing). Standard library only.

    summary.py [--command TEXT] RESULT_DIR > summary.md
"""
import argparse
import json
import os
import re


def sig(x, digits=3):
    """x with `digits` significant digits, without exponent for the usual magnitudes."""
    if x is None:
        return ""
    if x == 0:
        return "0"
    s = f"{x:.{digits}g}"
    if "e" in s:
        s = f"{x:.0f}" if abs(x) >= 1 else s
    return s


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def measure(b):
    """The benchmark's own time: wall clock for names ending in /real_time, CPU time otherwise."""
    return b["real_time"] if b["run_name"].endswith("/real_time") else b["cpu_time"]


def aggregates(doc):
    """{run_name without /real_time: {aggregate_name: benchmark entry}}"""
    out = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") != "aggregate":
            b = dict(b, aggregate_name="median")  # single runs (REPETITIONS=1) stand for the median
        name = re.sub(r"/real_time$", "", b["run_name"])
        out.setdefault(name, {})[b["aggregate_name"]] = b
    return out


def unit_time(b, unit):
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    return measure(b) * scale[b["time_unit"]] / scale[unit]


def cv(entry):
    c = entry.get("cv")
    return f"{100 * measure(c):.1f}%" if c else ""


def context_lines(doc, command):
    c = doc["context"]
    load_avg = ", ".join(f"{x:.2f}" for x in c.get("load_avg", []))
    lines = [
        f"- date: {c['date']}",
        f"- machine: {c['num_cpus']} CPUs at {c['mhz_per_cpu']} MHz, load average at start {load_avg}"
        " (shared machine: preliminary numbers)",
        f"- Google Benchmark library build type: {c.get('library_build_type', '?')}",
    ]
    if command:
        lines.append(f"- command: `{command}`")
    return lines


def nn_table(doc):
    agg = aggregates(doc)
    rows = [
        "| pass | net | batch | scalar | time (µs) | cv | GFLOP/s | floor (µs) | floor GFLOP/s | × floor | × loss_and_gradient |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    passes = ["forward", "loss_and_gradient", "hessian_vector_product", "cached_hessian_vector_product"]

    def order(item):  # registration order: net (as listed), scalar, pass
        m = re.match(r"nn/([a-z_]+)/net:([0-9-]+)/batch:\d+/(\w+)$", item[0])
        if not m:
            return (1, item[0])
        widths = [int(w) for w in m.group(2).split("-")]
        weights = sum(a * b for a, b in zip(widths, widths[1:]))  # smaller nets first
        return (0, weights, m.group(3) != "float", passes.index(m.group(1)) if m.group(1) in passes else 9)

    for name, a in sorted(agg.items(), key=order):
        m = re.match(r"nn/(?!floor/)([a-z_]+)/net:([0-9-]+)/batch:(\d+)/(\w+)$", name)
        if not m or "median" not in a:
            continue
        med = a["median"]
        floor = agg.get(name.replace("nn/", "nn/floor/", 1), {}).get("median")
        rows.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                m.group(1), m.group(2), m.group(3), m.group(4), sig(unit_time(med, "us")), cv(a),
                sig(med.get("GFLOP/s")), sig(unit_time(floor, "us")) if floor else "",
                sig(floor.get("GFLOP/s")) if floor else "", sig(med.get("x_floor")), sig(med.get("x_grad"))))
    return rows


def train_table(doc):
    agg = aggregates(doc)
    rows = [
        "| training step | batch | time (µs) | cv | examples/s | GFLOP/s | floor (µs) | floor GFLOP/s | × floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, a in agg.items():
        m = re.match(r"train/step/net:([0-9-]+)/batch:(\d+)/(\w+)$", name)
        if not m or "median" not in a:
            continue
        med = a["median"]
        floor = agg.get(name.replace("train/step/", "train/floor/", 1), {}).get("median")
        rows.append("| {} {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            m.group(1), m.group(3), m.group(2), sig(unit_time(med, "us")), cv(a), sig(med.get("examples/s")),
            sig(med.get("GFLOP/s")), sig(unit_time(floor, "us")) if floor else "",
            sig(floor.get("GFLOP/s")) if floor else "", sig(med.get("x_floor"))))
    return rows


def control_table(doc):
    agg = aggregates(doc)
    rows = [
        "| control | system | width | planner | candidates × horizon | time (µs) | cv | p50 (µs) | p99 (µs) |",
        "|---|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for name, a in agg.items():
        m = re.match(r"control/(adapt|plan|step)/system:(\w+)/width:(\d+)(?:/window:\d+)?"
                     r"(?:/planner:(\w+)/candidates:(\d+)/horizon:(\d+))?$", name)
        if not m or "median" not in a:
            continue
        med = a["median"]
        shape = f"{m.group(5)} × {m.group(6)}" if m.group(5) else "window 16"
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            m.group(1), m.group(2), m.group(3), m.group(4) or "", shape, sig(unit_time(med, "us")), cv(a),
            sig(med.get("p50_us")), sig(med.get("p99_us"))))
    return rows


def maml_tables(doc):
    """One row per configuration: the meta-step on 1 thread (CPU time), its floor, and on 2
    threads (wall-clock time)."""
    agg = aggregates(doc)
    rows = [
        "| order | inner steps | width | meta-batch | 1 thread (ms) | cv | tasks/s | GFLOP/s | floor (ms) | × floor "
        "| bytes held | 2 threads, wall (ms) | cv | speedup | ceiling | bytes held (2 threads) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    parts = ["| benchmark | time (µs) | cv |", "|---|---:|---:|"]

    def kib(b):
        return f"{b['bytes'] / 1024:.0f} KiB" if b and "bytes" in b else ""

    def order(item):  # width, order, inner steps, meta-batch; then sampling and Adam by size
        m = re.search(r"order:(\d)/steps:(\d+)/width:(\d+)/batch:(\d+)", item[0])
        if m:
            return (0, int(m.group(3)), int(m.group(1)), int(m.group(2)), int(m.group(4)))
        part = re.match(r"maml/(sample|adam)/\w+:(\d+)", item[0])
        return (1, part.group(1) != "sample", int(part.group(2))) if part else (2, item[0])

    for name, a in sorted(agg.items(), key=order):
        if "median" not in a:
            continue
        med = a["median"]
        m = re.match(r"maml/step/(order:(\d)/steps:(\d+)/width:(\d+)/batch:(\d+))/threads:1$", name)
        if m:
            two = agg.get(name[: -len("threads:1")] + "threads:2", {})
            t2 = two.get("median")
            floor = agg.get("maml/floor/" + m.group(1), {}).get("median")
            rows.append(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                    *m.groups()[1:], sig(unit_time(med, "ms")), cv(a), sig(med.get("tasks/s")),
                    sig(med.get("GFLOP/s")), sig(unit_time(floor, "ms")) if floor else "",
                    sig(med.get("x_floor")), kib(med), sig(unit_time(t2, "ms")) if t2 else "", cv(two) if t2 else "",
                    sig(t2.get("speedup")) if t2 else "", sig(t2.get("ceiling")) if t2 else "", kib(t2)))
        elif re.match(r"maml/(sample|adam)/", name):
            parts.append(f"| {name} | {sig(unit_time(med, 'us'))} | {cv(a)} |")
    return rows, parts


def memory_table(doc):
    rows = [
        "| algorithm | width | order | inner steps | parameters | bytes() (KiB) | peak RSS before (KiB) | peak RSS (KiB) | growth (KiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fits = []
    groups = {}
    for r in doc:
        r = dict(r)
        r.setdefault("algorithm", "maml")
        r.setdefault("bytes", r.get("maml_bytes", 0))  # reports before the family
        order = r["order"] if r["order"] else "-"
        rows.append("| {algorithm} | {width} | {o} | {steps} | {parameters} | {kib:.0f} | {rss_before_kib} | {rss_peak_kib} | {rss_growth_kib} |"
                    .format(kib=r["bytes"] / 1024, o=order, **r))
        groups.setdefault((r["algorithm"], r["width"], order), []).append(r)
    for (algorithm, width, order), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["steps"])
        if len(rs) < 2:
            continue
        a, b = rs[0], rs[-1]
        dk = b["steps"] - a["steps"]
        per_step = (b["bytes"] - a["bytes"]) / dk
        rss_per_step = (b["rss_peak_kib"] - a["rss_peak_kib"]) * 1024 / dk
        theta = 4 * a["parameters"]
        fits.append(f"- {algorithm}, width {width}, order {order}: per inner step (K = {a['steps']} → {b['steps']}) bytes() "
                    f"grows by {per_step / 1024:.1f} KiB = {per_step / theta:.2f} × θ ({theta / 1024:.1f} KiB), "
                    f"peak RSS by {rss_per_step / 1024:.1f} KiB = {rss_per_step / theta:.2f} × θ")
    return rows, fits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--command", default="")
    ap.add_argument("dir")
    args = ap.parse_args()
    nn = load(os.path.join(args.dir, "nn.json"))
    maml = load(os.path.join(args.dir, "maml.json"))
    memory = load(os.path.join(args.dir, "memory.json"))
    train = load(os.path.join(args.dir, "train.json"))
    control = load(os.path.join(args.dir, "control.json"))
    out = ["# metalearn benchmarks", ""]
    first = nn or maml
    if first:
        out += context_lines(first, args.command) + [""]
    out += ["Medians; time is CPU time of the benchmark thread, except wall-clock time for threads:2; "
            "cv = coefficient of variation over the repetitions; × columns, speedup and ceiling are "
            "measured paired (bench/README.md), floor columns come from the floor benchmarks.", ""]
    if nn:
        out += ["## Network passes", ""] + nn_table(nn) + [""]
    if train:
        out += ["## Supervised training steps (forward, backward, Adam; 1 thread)", ""] + train_table(train) + [""]
    if control:
        out += ["## A control step of examples/adaptive_control.cpp (1 thread; p50/p99 of single iterations)", ""] + \
            control_table(control) + [""]
    if maml:
        rows, parts = maml_tables(maml)
        out += ["## Meta-steps", ""] + rows + ["", "### Parts of a meta-step that are not MAML", ""] + parts + [""]
    if memory:
        rows, fits = memory_table(memory)
        out += ["## Peak memory against inner steps (meta-batch 25, one process per row)", ""] + rows + [""] + fits + [""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
