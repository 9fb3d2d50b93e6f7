#!/usr/bin/env python3
"""Markdown results from bench/run_bench.sh's JSON lines: per shape, every model and padding
mode, our training throughput next to PyTorch's in each mode that ran (fp32 eager, bf16 SDPA,
torch.compile, compile-graphs, compile-max), the best PyTorch mode and our ratio to it, then
the details (step times, eval throughput, peak memory, warm-up, optimizer step).

usage: results_table.py OURS.jsonl TORCH.jsonl TITLE NOTES_FILE > results.md
"""
import json
import sys

PRECISIONS = ["fp32", "bf16", "compile", "compile-graphs", "compile-max"]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def fmt(x, digits=0):
    return "" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else ""


def best_mode(runs):
    """the PyTorch mode with the most real tokens/s among runs {mode: row}: (mode, row)"""
    return max(runs.items(), key=lambda m: m[1]["train_real_tokens_per_s"], default=(None, {}))


def warmup(b):
    """warm-up steps and their seconds; torch's static modes also the eval warm-up"""
    if "warmup_s" not in b:
        return fmt(b.get("warmup"))
    s = f"{b['warmup']} in {b['warmup_s']:.1f} s"
    return s + (f", eval {b['eval_warmup_s']:.1f} s" if "eval_warmup_s" in b else "")


def notes(b):
    """the optimizer step kept (and the other's step time), recompiles and graph skips"""
    if "optimizer" not in b:
        return ""
    others = [f"{v['optimizer']}: {v.get('train_step_ms_median', v.get('error'))}"
              for v in b.get("optimizer_variants", [])[1:]]
    s = b["optimizer"] + (f" (else {'; '.join(map(str, others))} ms)" if others else "")
    for k in ("recompiles_in_timed_steps", "cudagraph_skips", "graph_breaks"):
        s += f", {k.replace('_', ' ')} {b[k]}" if b.get(k) else ""
    return s + (f", {b['padding']}" if b.get("padding") not in (None, b["mode"]) else "")


def main_table(rows, theirs, present):
    print("Training, real (non-padding) tokens/s; step = median train step (ms); the last "
          "column is ours / the best PyTorch mode.\n")
    cols = ["model", "padding", "ours", "ours step", "TFLOP/s", "MFU"] + \
        [f"torch {p}" for p in present] + ["best PyTorch mode", "its step", "ours / best"]
    print("| " + " | ".join(cols) + " |")
    print("|---|---|" + "---:|" * (4 + len(present)) + "---|---:|---:|")
    for r in rows:
        t = [theirs.get(r["key"], {}).get(p, {}).get("train_real_tokens_per_s") for p in present]
        mode, best = best_mode(theirs.get(r["key"], {}))
        cells = [r["model"], f"{r['mode']} (mean len {r['mean_padded_len']})",
                 fmt(r["train_real_tokens_per_s"]), f"{r['train_step_ms_median']:.2f}",
                 f"{r['train_tflops']:.3f}", f"{100 * r['mfu']:.1f}%" if "mfu" in r else ""]
        cells += [fmt(x) for x in t] + [mode or "", fmt(best.get("train_step_ms_median"), 2),
                                        ratio(r["train_real_tokens_per_s"],
                                              best.get("train_real_tokens_per_s"))]
        print("| " + " | ".join(cells) + " |")


def details_table(rows, theirs, present):
    print("\nDetails: train step ms median (p10-p90), the same steps back to back (one sync at "
          "the end), train and eval samples/s, peak memory MiB, warm-up steps (untimed), notes.\n")
    print("| model | padding | backend | step ms | back to back ms | train samples/s "
          "| eval samples/s | peak MiB | warm-up | notes |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        for b in [r] + [theirs[r["key"]][p] for p in present if p in theirs.get(r["key"], {})]:
            print(f"| {r['model']} | {r['mode']} | {b['backend']} | "
                  f"{b['train_step_ms_median']:.2f} ({b['train_step_ms_p10']:.2f}-"
                  f"{b['train_step_ms_p90']:.2f}) | {fmt(b.get('train_step_ms_async'), 2)} "
                  f"| {fmt(b['train_samples_per_s'], 1)} | {fmt(b.get('eval_samples_per_s'), 1)} "
                  f"| {fmt(b['peak_mem_mib'])} | {warmup(b)} | {notes(b)} |")


def main():
    ours, torch_rows = load(sys.argv[1]), load(sys.argv[2])
    title, notes_file = sys.argv[3], sys.argv[4]
    ok = lambda r: "error" not in r
    key = lambda r: (r["model"], r["shape"], r["mode"])
    theirs = {}  # (model, shape, padding) -> {torch mode: row}
    for r in filter(ok, torch_rows):
        theirs.setdefault(key(r), {})[r["backend"][len("torch-"):]] = r
    present = [p for p in PRECISIONS if any(p in m for m in theirs.values())]
    print(f"# {title}\n")
    print(open(notes_file).read())
    for shape in dict.fromkeys(r["shape"] for r in ours if ok(r)):
        rows = [dict(r, key=key(r)) for r in ours if ok(r) and r["shape"] == shape]
        r0 = rows[0]
        print(f"\n## {shape}: seq {r0['seq']}, batch {r0['batch']} ({r0['data']}, mean "
              f"{r0['mean_real_len']} real tokens per row)\n")
        main_table(rows, theirs, present)
        details_table(rows, theirs, present)
    errors = [r for r in ours + torch_rows if not ok(r)]
    if errors:
        print("\n## Failed runs\n")
        for r in errors:
            print(f"- {r.get('model')} {r.get('shape', '')} {r.get('mode', '')} "
                  f"{r.get('backend', '')}: {r['error']}")


if __name__ == "__main__":
    main()
