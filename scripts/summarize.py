#!/usr/bin/env python3
"""Turns the outputs of the figure scripts (scripts/*.sh) into the rows of the README's tables. Standard library only.

    scripts/summarize.py margin DIR...        mml pretrain runs (DIR/log.jsonl): the margin sweep's rows
    scripts/summarize.py positives LOG...     mml train-embedding outputs (its `result {...}` line): positive selection
    scripts/summarize.py overhead JSON...     Benchmarks/python_overhead.py --json files: ranges and medians
    scripts/summarize.py backbone JSON...     Benchmarks/side_by_side.py --out files, one per round: medians, spreads
    scripts/summarize.py mpi LOG              scripts/mpi-throughput.sh's output: the rates and their ratios
    scripts/summarize.py cues NONE CUE=JSON...  mml eval --report files of one model, every cue (NONE) and with
                                              each cue removed: points lost by fused and each level per removed cue

Each prints Markdown table rows in the README's columns; the scripts write them to their output directory.
"""
import json
import re
import statistics
import sys


def pct(x):
    """An accuracy as the README prints it (percent), whether stored as a fraction or a percentage."""
    return x * 100 if abs(x) <= 1.0 else x


def acc(mean, ci):
    return f"{pct(mean):.2f} +- {pct(ci):.2f}"


def margin(dirs):
    cols = [("prototype", 1), ("cosine-classifier", 1), ("prototype", 5), ("cosine-classifier", 5)]
    print("| m | " + " | ".join(f"5-way {s}-shot {p}" for p, s in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for d in dirs:
        records = [json.loads(line) for line in open(f"{d}/log.jsonl") if line.strip()]
        test = [r for r in records if "test_split" in r]
        if not test:
            sys.exit(f"summarize: {d}/log.jsonl has no test record (did the run finish?)")
        t = test[-1]
        m = re.search(r"_m(.+)$", d.rstrip("/"))
        cells = []
        for p, s in cols:
            key = f"{p}_5way_{s}shot"
            cells.append(acc(t[key], t[key + "_ci95"]) if key in t else "-")
        print(f"| {m.group(1) if m else d} | " + " | ".join(cells) + " |")


def positives(logs):
    print("| positives | Recall@1 | Recall@2 | Recall@4 | Recall@8 | R-precision | MAP@R | 5-way 1-shot | 5-way 5-shot |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in logs:
        line = [l for l in open(path) if l.startswith("result {")]
        if not line:
            sys.exit(f"summarize: no `result {{...}}` line in {path} (did the run finish?)")
        r = json.loads(line[-1][len("result "):])
        found = re.search(r"triplet_([a-z-]+)", path)
        cells = [f"{pct(r[k]):.2f}" if k in r else "-"
                 for k in ["recall_at_1", "recall_at_2", "recall_at_4", "recall_at_8", "r_precision", "map_at_r"]]
        for shot in (1, 5):
            k = f"fewshot_5way_{shot}shot"
            cells.append(acc(r[k], r[k + "_ci95"]) if k in r else "-")
        print(f"| {found.group(1) if found else path} | " + " | ".join(cells) + " |")


def span(values, fmt, unit=""):
    """"lo-hi<unit> (median m<unit>)", the README's way of giving figures that drift from run to run."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi, med = min(values), max(values), statistics.median(values)
    return f"{fmt(lo)}-{fmt(hi)}{unit} (median {fmt(med)}{unit})"


def overhead(files):
    runs = [json.load(open(f)) for f in files]
    get = lambda k: [r.get(k) for r in runs]
    whole, one, two = (lambda v: f"{v:.0f}"), (lambda v: f"{v:.1f}"), (lambda v: f"{v:.2f}")
    print(f"{len(runs)} runs: {', '.join(files)}")
    print("| what | mml from Python | Swift API (same run) | PyTorch batched matmul + topk (same process) | ratio |")
    print("|---|---|---|---|---|")
    print(f"| per call, tiny episode (2-way 1-shot, 1 query, 4 x 1 x 1 maps) | {span(get('tiny_python_us'), whole, ' us')} "
          f"| {span(get('tiny_swift_us'), one, ' us')} | | overhead {span(get('overhead_us'), whole, ' us')} per call |")
    print(f"| 5-way 5-shot pixel level, 75 queries, 64 x 21 x 21, k = 3 | {span(get('episode_mml_ms'), whole, ' ms')} "
          f"| {span(get('episode_swift_ms'), whole, ' ms')} | {span(get('episode_torch_ms'), whole, ' ms')} "
          f"| {span(get('ratio'), two, 'x')} |")
    diffs = [d for d in get("max_rel_diff") if d is not None]
    if diffs:
        print(f"scores agree with PyTorch's to {max(diffs):.1e} (largest relative difference over the runs)")


def backbone(files):
    rounds = [json.load(open(f)) for f in files]
    names = [r["name"] for r in rounds[0]]
    print(f"{len(rounds)} rounds; ratio = PyTorch time / mml time (above 1: mml is faster), spread over the rounds")
    print("| what | mml | PyTorch 2.13 tuned | ratio | best / best | mml peak memory |")
    print("|---|---|---|---|---|---|")
    for name in names:
        rows = [next((r for r in rnd if r["name"] == name), None) for rnd in rounds]
        rows = [r for r in rows if r]
        mml = [r["seconds"] for r in rows]
        peer = [r["peer_seconds"] for r in rows if r.get("peer_seconds")]
        ratios = [r["speedup"] for r in rows if r.get("speedup")]
        peak = [r[k] for r in rows for k in ("peak_bytes", "peakBytes", "peak_mib") if r.get(k)]
        med = statistics.median(mml)
        batch = round(rows[0]["items_per_s"] * rows[0]["seconds"]) if rows[0].get("items_per_s") else None
        rate = (lambda t: f", {batch / t:.0f} img/s") if batch else (lambda t: "")
        cells = [f"{med * 1e3:.1f} ms" + rate(med)]
        cells.append(f"{statistics.median(peer) * 1e3:.1f} ms" + rate(statistics.median(peer)) if peer else "")
        cells.append(f"**{statistics.median(ratios):.2f}** ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "")
        cells.append(f"{min(peer) / min(mml):.2f}x" if peer else "")
        cells.append(f"{statistics.median(peak) / 2**20:.0f} MiB" if peak and max(peak) > 2**20 else
                     (f"{statistics.median(peak):.0f} MiB" if peak else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")


def mpi(path):
    one, two = [], []
    current = None
    for line in open(path):
        if "1 process x 2 threads" in line:
            current = one
        elif "2 processes x 1 thread" in line:
            current = two
        m = re.search(r"([0-9.]+) episodes/s", line)
        if m and current is not None and line.startswith("trained"):
            current.append(float(m.group(1)))
    if not one or len(one) != len(two):
        sys.exit(f"summarize: could not pair the episodes/s lines in {path}")
    print("| on this machine (2 cores) | value |")
    print("|---|---|")
    print(f"| 1 process x 2 threads | {' / '.join(f'{v:.2f}' for v in one)} episodes/s (rounds "
          f"{' / '.join(str(i + 1) for i in range(len(one)))}) |")
    print(f"| 2 processes x 1 thread | {' / '.join(f'{v:.2f}' for v in two)} episodes/s: "
          f"{' / '.join(f'{b / a:.2f}x' for a, b in zip(one, two))} the one-process rate |")


def cues(args):
    """The points each of fused / pixel / part / distribution loses when one synthetic cue is removed, against the
    same episodes with every cue; the level alone that loses most in bold (scripts/synthetic-cues.sh)."""
    def read(path):
        setting = json.load(open(path))["results"][0]
        fused = setting.get("fused") or setting["accuracy"]
        return {"fused": fused["mean"], **{k: v["mean"] for k, v in (setting.get("levels") or {}).items()}}
    base = read(args[0])
    levels = ["pixel", "part", "distribution"]
    print(f"Every cue, {json.load(open(args[0]))['results'][0]['episodes']} test episodes: "
          + ", ".join(f"{k} {pct(base[k]):.2f}" for k in ["fused"] + levels if k in base))
    print()
    print("| cue removed | fused | pixel | part | distribution | loses most |")
    print("|---|---|---|---|---|---|")
    for arg in args[1:]:
        cue, path = arg.split("=", 1)
        row = read(path)
        lost = {k: pct(row[k]) - pct(base[k]) for k in ["fused"] + levels if k in row and k in base}
        worst = min((k for k in levels if k in lost), key=lambda k: lost[k])
        others = sorted(lost[k] for k in levels if k in lost and k != worst)
        margin = (others[0] - lost[worst]) if others else 0.0
        cells = [f"{lost['fused']:+.1f}"] + [(f"**{lost[k]:+.1f}**" if k == worst else f"{lost[k]:+.1f}")
                                               for k in levels]
        verdict = "not read: no level loses 1 point" if lost[worst] > -1 else ("yes" if worst == cue else "NO")
        print(f"| {cue} | " + " | ".join(cells) + f" | {worst} by {margin:.1f} ({verdict}) |")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    kind, paths = sys.argv[1], sys.argv[2:]
    {"margin": margin, "positives": positives, "overhead": overhead, "backbone": backbone,
     "mpi": lambda p: mpi(p[0]), "cues": cues}.get(kind, lambda _: sys.exit(__doc__))(paths)


if __name__ == "__main__":
    main()
