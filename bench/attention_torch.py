#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the batches of bench/attention_bench: the same
cases (shape, heads x head_dim, dropout, the exact lengths drawn), forward + backward in bf16
on CUDA, one JSON line per (case, path) with attention_bench's keys.

  attention_torch.py ATTENTION_JSONL [--steps 20] [--warmup 3] [--backends flash,...]

ATTENTION_JSONL: attention_bench's output (or its --lengths-only lines); the first line of
each case gives its batch, seq, heads, head_dim, dropout, lengths and gflop.

Paths, each under torch.nn.attention.sdpa_kernel(<one backend>):
  torch-<backend>         padded [B,T]: q, k, v are views of one [B,T,3*C] tensor (a fused
                          QKV projection's output) transposed to [B,NH,T,HD]; with real
                          lengths a boolean key-padding attn_mask [B,1,1,T] (True = attend),
                          with full lengths no mask. The flash backend takes no mask: its rows
                          with real lengths say "unsupported".
  torch-<backend>-packed  packed: the same views of one [N,3*C] tensor as jagged nested tensors
                          (torch.nested.nested_tensor_from_jagged, offsets from the lengths,
                          so no copy), [B,NH,j,HD]; flash, efficient and cudnn only (math
                          needs contiguous jagged inputs).
Backends: flash, efficient (memory-efficient), cudnn, math (the unfused reference). A path
torch cannot run gets an "error" line instead of timings.

Timing: CUDA events around one forward (the SDPA call) and around one backward
(torch.autograd.grad of the output with respect to q, k, v: the attention's own backward, not
the copy of dq, dk, dv into one fused gradient that a fused-QKV model adds). Each timed region
is queued behind a GPU sleep so that Python's launch cost is hidden and the events measure GPU
time, as attention_bench's back-to-back calls do. Median (the upper one, as attention_bench's)
of --steps after --warmup. TFLOP/s use the case's "gflop" from attention_bench, one count for
every path (see there).
Without CUDA (or without torch) it prints a SKIP line and exits 77.
"""
import argparse
import json
import re
import statistics
import sys
import warnings

BACKENDS = ["flash", "efficient", "cudnn", "math"]
PACKED_BACKENDS = ["flash", "efficient", "cudnn"]
CASE_KEYS = ["case", "batch", "seq", "heads", "head_dim", "dropout", "tokens", "mean_len",
             "gflop", "lengths"]
SLEEP_CYCLES = 5_000_000  # ~2.5 ms at 2 GHz: longer than Python takes to queue one region


def read_cases(path):
    """the first line of each case, in file order"""
    cases = {}
    try:
        lines = open(path).readlines()
    except OSError as e:
        sys.exit(f"attention_torch.py: {e}")
    for n, line in enumerate(lines, 1):
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        missing = [k for k in CASE_KEYS if k not in row]
        if missing:
            sys.exit(f"attention_torch.py: {path}:{n}: missing {', '.join(missing)}")
        if len(row["lengths"]) != row["batch"] or sum(row["lengths"]) != row["tokens"]:
            sys.exit(f"attention_torch.py: {path}:{n}: lengths do not match batch/tokens")
        cases.setdefault(row["case"], {k: row[k] for k in CASE_KEYS})
    if not cases:
        sys.exit(f"attention_torch.py: {path}: no attention_bench lines")
    return list(cases.values())


def padded_inputs(c, torch):
    """q, k, v [B,NH,T,HD] as views of qkv [B,T,3C], the mask or None, dout"""
    B, T, NH, HD = c["batch"], c["seq"], c["heads"], c["head_dim"]
    qkv = (torch.rand(B, T, 3 * NH * HD, device="cuda") * 2 - 1).to(torch.bfloat16)
    qkv.requires_grad_(True)
    q, k, v = (x.transpose(1, 2) for x in qkv.view(B, T, 3, NH, HD).unbind(2))
    lengths = torch.tensor(c["lengths"], device="cuda")
    mask = None
    if min(c["lengths"]) < T:
        mask = (torch.arange(T, device="cuda")[None, :] < lengths[:, None]).view(B, 1, 1, T)
    dout = torch.rand(B, T, NH, HD, device="cuda").to(torch.bfloat16).transpose(1, 2)
    return q, k, v, mask, dout


def packed_inputs(c, torch):
    """q, k, v [B,NH,j,HD] jagged views of qkv [N,3C], no mask, dout likewise"""
    N, NH, HD, L = c["tokens"], c["heads"], c["head_dim"], c["lengths"]
    offsets = torch.tensor([0] + L, device="cuda").cumsum(0)
    jagged = lambda x: torch.nested.nested_tensor_from_jagged(
        x, offsets, min_seqlen=min(L), max_seqlen=max(L)).transpose(1, 2)
    qkv = (torch.rand(N, 3 * NH * HD, device="cuda") * 2 - 1).to(torch.bfloat16)
    qkv.requires_grad_(True)
    q, k, v = (jagged(x) for x in qkv.view(N, 3, NH, HD).unbind(1))
    dout = jagged(torch.rand(N, NH, HD, device="cuda").to(torch.bfloat16))
    return q, k, v, None, dout


def time_path(torch, backend, inputs, p, steps, warmup):
    """median ms of the forward and of the backward"""
    from torch.nn.attention import sdpa_kernel
    q, k, v, mask, dout = inputs
    sdpa = torch.nn.functional.scaled_dot_product_attention
    sleep = getattr(torch.cuda, "_sleep", lambda cycles: None)
    fwd, bwd = [], []
    with sdpa_kernel(backend):
        for step in range(warmup + steps):
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
            sleep(SLEEP_CYCLES)
            ev[0].record()
            out = sdpa(q, k, v, attn_mask=mask, dropout_p=p)
            ev[1].record()
            sleep(SLEEP_CYCLES)
            ev[2].record()
            torch.autograd.grad(out, (q, k, v), dout)
            ev[3].record()
            torch.cuda.synchronize()
            if step >= warmup:
                fwd.append(ev[0].elapsed_time(ev[1]))
                bwd.append(ev[2].elapsed_time(ev[3]))
    return statistics.median_high(fwd), statistics.median_high(bwd)


def reason(warning):
    """why torch did not run a kernel, from one of its warnings ("" when it does not say)"""
    text = re.sub(r" \(Triggered internally at [^)]*\)", "", str(warning.message))
    return "" if "has been runtime disabled" in text else text.splitlines()[0]


def run_path(torch, c, name, packed, args):
    """one JSON-ready dict: timings, or an error"""
    from torch.nn.attention import SDPBackend
    backend = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
               "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}[name]
    row = dict(c, path=f"torch-{name}" + ("-packed" if packed else ""),
               layout="packed" if packed else "padded")
    if name == "flash" and not packed and min(c["lengths"]) < c["seq"]:
        return dict(row, error="unsupported: the flash backend takes no attn_mask")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inputs = (packed_inputs if packed else padded_inputs)(c, torch)
            f, b = time_path(torch, backend, inputs, c["dropout"], args.steps, args.warmup)
    except Exception as e:  # a backend torch cannot run here: say why, go on
        why = "; ".join(dict.fromkeys(reason(w) for w in caught if reason(w)))
        return dict(row, error=f"{type(e).__name__}: {str(e).splitlines()[0]}"
                    + (f" ({why})" if why else ""))
    finally:
        torch.cuda.empty_cache()
    return dict(row, fwd_ms=round(f, 4), bwd_ms=round(b, 4), total_ms=round(f + b, 4),
                tflops=round(c["gflop"] / (f + b), 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("jsonl", help="attention_bench's output")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    args = ap.parse_args()
    names = args.backends.split(",")
    if args.steps < 1 or args.warmup < 0 or any(n not in BACKENDS for n in names):
        ap.error(f"--steps >= 1, --warmup >= 0, --backends from {','.join(BACKENDS)}")
    cases = read_cases(args.jsonl)
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 77
    if not torch.cuda.is_available():
        print(f"SKIP: no CUDA device (torch {torch.__version__})")
        return 77
    torch.manual_seed(0)
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name()}
    for c in cases:
        for packed in (False, True):
            for name in names:
                if packed and name not in PACKED_BACKENDS:
                    continue
                print(json.dumps(dict(run_path(torch, c, name, packed, args), **info)),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
