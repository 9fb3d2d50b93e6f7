#!/usr/bin/env python3
"""Markdown results from bench/run_bench.sh's JSON lines: per shape, every model and padding
mode, our training throughput next to PyTorch's (fp32 eager, bf16 SDPA, torch.compile) with
the ratios, then the details (step times, eval throughput, peak memory).

usage: results_table.py OURS.jsonl TORCH.jsonl TITLE NOTES_FILE > results.md
"""
import json
import sys

PRECISIONS = ["fp32", "bf16", "compile"]


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


def main():
    ours, torch_rows, title, notes = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3], sys.argv[4]
    ok = lambda r: "error" not in r
    key = lambda r: (r["model"], r["shape"], r["mode"])
    theirs = {(key(r), r["backend"][len("torch-"):]): r for r in torch_rows if ok(r)}
    print(f"# {title}\n")
    print(open(notes).read())
    for shape in dict.fromkeys(r["shape"] for r in ours if ok(r)):
        rows = [r for r in ours if ok(r) and r["shape"] == shape]
        r0 = rows[0]
        print(f"\n## {shape}: seq {r0['seq']}, batch {r0['batch']} ({r0['data']}, mean "
              f"{r0['mean_real_len']} real tokens per row)\n")
        print("Training, real (non-padding) tokens/s; ratios are ours / PyTorch's.\n")
        print("| model | padding | ours | TFLOP/s | MFU | torch fp32 | torch bf16 | torch compile "
              "| vs fp32 | vs bf16 | vs compile |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            t = [theirs.get((key(r), p), {}).get("train_real_tokens_per_s") for p in PRECISIONS]
            mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else ""
            print(f"| {r['model']} | {r['mode']} (mean len {r['mean_padded_len']}) "
                  f"| {fmt(r['train_real_tokens_per_s'])} | {r['train_tflops']:.3f} | {mfu} | "
                  + " | ".join(fmt(x) for x in t) + " | "
                  + " | ".join(ratio(r["train_real_tokens_per_s"], x) for x in t) + " |")
        print("\nDetails: train step ms median (p10-p90), train samples/s, eval samples/s, "
              "peak memory MiB.\n")
        print("| model | padding | backend | step ms | train samples/s | eval samples/s | peak MiB |")
        print("|---|---|---|---:|---:|---:|---:|")
        for r in rows:
            for b in [r] + [theirs[(key(r), p)] for p in PRECISIONS if (key(r), p) in theirs]:
                print(f"| {r['model']} | {r['mode']} | {b['backend']} | "
                      f"{b['train_step_ms_median']:.2f} ({b['train_step_ms_p10']:.2f}-"
                      f"{b['train_step_ms_p90']:.2f}) | {fmt(b['train_samples_per_s'], 1)} | "
                      f"{fmt(b['eval_samples_per_s'], 1)} | {fmt(b['peak_mem_mib'])} |")
    errors = [r for r in ours + torch_rows if not ok(r)]
    if errors:
        print("\n## Failed runs\n")
        for r in errors:
            print(f"- {r.get('model')} {r.get('shape', '')} {r.get('mode', '')} "
                  f"{r.get('backend', '')}: {r['error']}")


if __name__ == "__main__":
    main()
