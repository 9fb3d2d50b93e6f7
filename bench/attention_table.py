#!/usr/bin/env python3
"""Markdown results of the attention microbenchmark: bench/attention_bench's JSON lines (ours)
and bench/attention_torch.py's (PyTorch SDPA on the same batches) merged into one table per
case with every path's forward + backward time and TFLOP/s, the speed ratios, the targets,
then the forward/backward details and the paths PyTorch could not run. Written to
bench/results/<date>-attention-<card>.md.

usage: attention_table.py OURS.jsonl TORCH.jsonl [--date YYYY-MM-DD] [--card NAME]
                          [--command CMD]... > md
"""
import argparse
import datetime
import json
import sys

OURS = ["flash", "flash-packed", "simple"]
COMMANDS = [  # as bench/device_check.sh runs them
    "build-gpu/attention_bench --steps 20 --warmup 3 --lengths-dir bench/lengths > attention.jsonl",
    "python3 bench/attention_torch.py attention.jsonl --steps 20 --warmup 3 > attention_torch.jsonl",
    "python3 bench/attention_table.py attention.jsonl attention_torch.jsonl --card NAME > attention.md",
]
NOTES = """\
12 heads x 64, dropout 0.1, bf16, forward + backward of the attention op alone. Cases: nsmc
(batch 32, T 128) and korquad (batch 8, T 512), each with every row T long ("full") or with B
lengths drawn (fixed seed) from the real feature lengths of NSMC train and KorQuAD dev
(bench/lengths/, from bench/seq_lengths; the lengths are in the JSON lines). Paths: ours
`flash` (fused kernels, padded batch), `flash-packed` (the same sequences back to back),
`simple` (KOE_CUDA_SIMPLE_ATTENTION=1, unfused); PyTorch's scaled_dot_product_attention per
backend, padded (q, k, v views of one [B,T,3C] tensor, a boolean key-padding mask with real
lengths) and `-packed` (jagged nested tensors over one [N,3C] tensor).

TFLOP/s: one count per case for every path, the useful work of real tokens:
4 * sum(L^2) * 64 * 12 * 3.5 (forward QK^T and PV over real rows x real keys, backward 2.5x).
Times are GPU time per call, medians: ours from --reps back-to-back calls between
synchronizations, PyTorch's from CUDA events around one call queued behind a GPU sleep (its
Python launch cost hidden); PyTorch's backward is SDPA's own (gradients of q, k, v), without
the stack into one fused dQKV that a fused-QKV model adds (ours writes dQKV directly)."""


def load(path):
    rows = []
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.startswith("{")]
    except OSError as e:
        print(f"attention_table.py: {e}", file=sys.stderr)
    return rows


def cell(r):
    return "" if r is None else f"{r['total_ms']:.3f} ({r['tflops']:.1f})"


def best(rows):
    """the fastest of the rows that ran, or None"""
    return min(rows, key=lambda r: r["total_ms"], default=None)


def speed(slow, fast):
    """how many times faster `fast` is than `slow`"""
    return f"{slow['total_ms'] / fast['total_ms']:.2f}x" if slow and fast else ""


def main():
    ap = argparse.ArgumentParser(description="attention microbenchmark -> markdown")
    ap.add_argument("ours")
    ap.add_argument("torch")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--card", help="the GPU's name (default: attention_torch.py's)")
    ap.add_argument("--command", action="append", help="a command to list (default: the usual)")
    args = ap.parse_args()
    ours, theirs = load(args.ours), load(args.torch)
    ran = [r for r in ours + theirs if "path" in r and "error" not in r]
    cases = list(dict.fromkeys(r["case"] for r in ours + theirs if "path" in r))
    if not cases:
        sys.exit("attention_table.py: no results in either file")
    torch_paths = list(dict.fromkeys(r["path"] for r in theirs if "path" in r))
    get = {(r["case"], r["path"]): r for r in ran}
    info = next((r for r in theirs if "device" in r), {})
    card = args.card or info.get("device", "unknown card")
    version = info.get("torch", "?")

    print(f"# Attention forward + backward: ours vs PyTorch SDPA, {card}\n")
    print(f"{args.date}, {card}, torch {version}. Commands (repository root, GPU machine):\n")
    print("\n".join("    " + c for c in args.command or COMMANDS) + "\n")
    print(NOTES + "\n")
    print("## Forward + backward: ms (TFLOP/s)\n")
    paths = OURS + torch_paths
    print("| case | B x T | mean len | " + " | ".join(paths) + " |")
    print("|---|---|---:|" + "---:|" * len(paths))
    for c in cases:
        r0 = next(r for r in ours + theirs if r["case"] == c)
        print(f"| {c} | {r0['batch']} x {r0['seq']} | {r0['mean_len']} | "
              + " | ".join(cell(get.get((c, p))) for p in paths) + " |")
    print_ratios(cases, get, torch_paths)
    print_details(cases, get, paths)
    failed = [r for r in theirs + ours if "error" in r]
    if failed:
        print("\n## Not run\n")
        for r in failed:
            print(f"- {r['case']} {r['path']}: {r['error']}")


def print_ratios(cases, get, torch_paths):
    print("\n## Ratios (> 1: ours faster)\n")
    print("Speed = the other's ms / ours. Padded: our flash vs PyTorch's best padded backend; "
          "packed: flash-packed vs its best packed one; best: our best path vs PyTorch's best "
          "path. simple / flash: the fused kernels' speed-up over the unfused baseline.\n")
    print("| case | best torch (padded) | flash vs it | best torch (packed) | flash-packed vs it "
          "| best ours | best torch | ours vs torch | simple / flash | targets |")
    print("|---|---|---:|---|---:|---|---|---:|---:|---|")
    for c in cases:
        tp = best([get[(c, p)] for p in torch_paths if (c, p) in get and "-packed" not in p])
        tk = best([get[(c, p)] for p in torch_paths if (c, p) in get and "-packed" in p])
        tb = best([r for r in (tp, tk) if r])
        ob = best([get[(c, p)] for p in ("flash", "flash-packed") if (c, p) in get])
        fl, sp = get.get((c, "flash")), get.get((c, "simple"))
        print(f"| {c} | {tp['path'] if tp else ''} | {speed(tp, fl)} | "
              f"{tk['path'] if tk else ''} | {speed(tk, get.get((c, 'flash-packed')))} | "
              f"{ob['path'] if ob else ''} | {tb['path'] if tb else ''} | {speed(tb, ob)} | "
              f"{speed(sp, fl)} | {targets(c, ob, tb, fl, sp)} |")


def targets(case, ours, torch, flash, simple):
    """the issue's targets: as fast as PyTorch's best everywhere, 2x the baseline at T=512"""
    marks = []
    if ours and torch:
        marks.append("torch: " + ("met" if ours["total_ms"] <= torch["total_ms"] else "MISSED"))
    if ours and ours["seq"] == 512 and flash and simple:
        marks.append("2x simple: " + ("met" if simple["total_ms"] >= 2 * flash["total_ms"]
                                      else "MISSED"))
    return ", ".join(marks)


def print_details(cases, get, paths):
    print("\n## Details\n")
    print("TFLOP/s all rows: a padded path's rate counting the padding query rows it computes "
          "too (4 * T * sum(L) * 64 * 12 * 3.5).\n")
    print("| case | path | fwd ms | bwd ms | total ms | TFLOP/s | TFLOP/s all rows |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for c in cases:
        for p in paths:
            r = get.get((c, p))
            if r:
                rows = f"{r['tflops_all_rows']:.1f}" if "tflops_all_rows" in r else ""
                print(f"| {c} | {p} | {r['fwd_ms']:.3f} | {r['bwd_ms']:.3f} | "
                      f"{r['total_ms']:.3f} | {r['tflops']:.1f} | {rows} |")


if __name__ == "__main__":
    main()
