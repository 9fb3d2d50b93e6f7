#!/usr/bin/env python3
"""The CUDA attention op against PyTorch in float64 (label gpu; exit 77 without a device).

tests/tools/attention_dump runs the op's forward and backward on fresh random inputs and
writes them out with its results; here the same attention is computed again in float64 on the
CPU: scaled_dot_product_attention with a boolean key mask without dropout, and
softmax(q k^T * scale, masked) * keep / (1 - p) @ v with dropout, keep being the dump's mask
(the project's own RNG, as the CPU op draws it); dq, dk, dv by autograd from the dump's dout.
out, lse and each of dq, dk, dv must be within DESIGN.md's relative L2 of the bf16 path
(2e-2 on activations, 5e-2 on gradients; NaN fails). Padded batches compare every query row,
the padding ones too; a row of length 0 has zero output and gradients and lse 0, as the
backends define it (kernels/ops.h).

  test_attention_sdpa.py [--dump PATH] [--backend cpu] [--quick] [--seed S]

--dump defaults to $KOE_BUILD_DIR/tests/attention_dump. --backend cpu checks the CPU op
instead, to the fp32 limit of 1e-4: a self-check of this reference. --quick leaves out
T = 512 and uses batch 5 for 33.
"""
import argparse
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

ACT_TOL, GRAD_TOL, FP32_TOL = 2e-2, 5e-2, 1e-4
HEADER = struct.Struct("<8s5if2i")  # magic, version, B, T, NH, HD, p, packed, N
MAGIC, VERSION = b"KOEATTN\0", 1


def cases(quick):
    """(B, T, NH, HD, p, packed, len of a batch-1 row or None): T x HD x batch 1 and 33,
    with and without dropout, padded and packed. A batch-1 row is full without dropout and
    2/3 long with it; one more case has a row of length 0."""
    out = []
    for T in (1, 7, 128, 129) if quick else (1, 7, 128, 129, 512):
        for HD in (32, 64, 128):
            for B in (1, 5 if quick else 33):
                for p in (0.0, 0.1):
                    for packed in (False, True):
                        L = (T if p == 0 else T * 2 // 3 + 1) if B == 1 else None
                        out.append((B, T, 3 if B == 1 else 2, HD, p, packed, L))
    out.append((1, 7, 2, 32, 0.1, False, 0))
    return out


def run_dump(dump, backend, path, seed, B, T, NH, HD, p, packed, L):
    cmd = [dump, "--backend", backend, "--batch", str(B), "--seq", str(T), "--heads", str(NH),
           "--head-dim", str(HD), "--dropout", str(p), "--seed", str(seed), "--out", path]
    cmd += ["--packed"] if packed else []
    cmd += ["--len", str(L)] if L is not None else []
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 77:
        print(r.stdout.strip() or "SKIP: attention_dump found no device")
        sys.exit(77)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")


def read_dump(path):
    data = bytearray(open(path, "rb").read())
    magic, version, B, T, NH, HD, p, packed, N = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        sys.exit(f"FAIL: {path}: not an attention_dump file of version {VERSION}")
    C, pos, d = NH * HD, HEADER.size, {}

    def take(name, dtype, *shape):
        nonlocal pos
        n = math.prod(shape)
        d[name] = torch.frombuffer(data, dtype=dtype, count=n, offset=pos).reshape(shape)
        pos += n * d[name].element_size()

    take("lengths", torch.int32, B)
    take("qkv", torch.float32, N, 3 * C)
    take("dout", torch.float32, N, C)
    take("out", torch.float32, N, C)
    take("lse", torch.float32, *((NH, N) if packed else (B, NH, T)))
    take("dqkv", torch.float32, N, 3 * C)
    if p > 0:
        take("keep", torch.uint8, B, NH, T, T)
    if pos != len(data):
        sys.exit(f"FAIL: {path}: {len(data)} bytes, expected {pos}")
    return B, T, NH, HD, p, bool(packed), d


def reference(B, T, NH, HD, p, lengths, qkv, dout, keep):
    """out [B,T,C], lse [B,NH,T], dqkv [B,T,3C] in float64 from a padded batch"""
    qkv = qkv.double().requires_grad_(True)
    q, k, v = qkv.view(B, T, 3, NH, HD).permute(2, 0, 3, 1, 4)  # [B,NH,T,HD] each
    nonempty = (lengths > 0).double()[:, None, None, None]
    # keys < len take part; an empty row would be all -inf (NaN): give it every key, zero it
    mask = (torch.arange(T)[None, :] < lengths[:, None]) | (lengths[:, None] == 0)
    mask = mask[:, None, None, :]
    s = (q @ k.transpose(-1, -2) * HD**-0.5).masked_fill(~mask, -math.inf)
    if p == 0:
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:
        o = (torch.softmax(s, -1) * keep.double() / (1 - p)) @ v
    out = (o * nonempty).permute(0, 2, 1, 3).reshape(B, T, NH * HD)
    out.backward(dout.double().view(B, T, NH * HD))
    lse = torch.logsumexp(s.detach(), -1) * nonempty[..., 0]
    return out.detach(), lse, qkv.grad


def reference_for(B, T, NH, HD, p, packed, d):
    """the reference laid out as the dump: a packed batch is padded with zeros (padding
    queries then get zero dout, so they add nothing to dk, dv) and its real rows kept"""
    lengths = d["lengths"].long()
    if not packed:
        return reference(B, T, NH, HD, p, lengths, d["qkv"], d["dout"], d.get("keep"))
    rows = torch.cat([b * T + torch.arange(int(n)) for b, n in enumerate(lengths)])
    C = NH * HD
    qkv = torch.zeros(B * T, 3 * C).index_copy_(0, rows, d["qkv"])
    dout = torch.zeros(B * T, C).index_copy_(0, rows, d["dout"])
    out, lse, dqkv = reference(B, T, NH, HD, p, lengths, qkv, dout, d.get("keep"))
    lse = lse.permute(1, 0, 2).reshape(NH, B * T)[:, rows]
    return out.view(B * T, C)[rows], lse, dqkv.view(B * T, 3 * C)[rows]


def rel_l2(got, ref, whole=0.0):
    """||got - ref|| / ||ref||; a part of a tensor whose reference is zero up to rounding
    (dq and dk at T = 1, where the softmax is constant) is measured against the whole's norm"""
    got, ref = got.double(), ref.double()
    if not torch.isfinite(got).all():
        return math.inf
    num, den = (got - ref).norm().item(), ref.norm().item()
    den = whole if den <= 1e-6 * whole else den
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)


def check(dump, backend, path, seed, case):
    run_dump(dump, backend, path, seed, *case)
    L = case[-1]
    B, T, NH, HD, p, packed, d = read_dump(path)
    out, lse, dqkv = reference_for(B, T, NH, HD, p, packed, d)
    C = NH * HD
    got_dqkv, ref_dqkv = d["dqkv"].reshape(-1, 3, C), dqkv.reshape(-1, 3, C)
    act_tol, grad_tol = (FP32_TOL, FP32_TOL) if backend == "cpu" else (ACT_TOL, GRAD_TOL)
    errs = [("out", rel_l2(d["out"], out.reshape(d["out"].shape)), act_tol),
            ("lse", rel_l2(d["lse"], lse), act_tol)]
    whole = ref_dqkv.norm().item()
    errs += [(name, rel_l2(got_dqkv[:, i], ref_dqkv[:, i], whole), grad_tol)
             for i, name in enumerate(("dq", "dk", "dv"))]
    ok = all(e < tol for _, e, tol in errs)
    name = (f"B={B} T={T} NH={NH} HD={HD} p={p:.1f} {'packed' if packed else 'padded'}"
            + (f" len={L}" if L is not None else "") + f" seed={seed}")
    print(f"{name:52s} " + " ".join(f"{n} {e:.1e}" for n, e, _ in errs)
          + ("" if ok else "  FAIL"), flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", help="the attention_dump program")
    ap.add_argument("--backend", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    dump = args.dump or os.path.join(os.environ.get("KOE_BUILD_DIR", "build"), "tests",
                                     "attention_dump")
    if not os.access(dump, os.X_OK):
        sys.exit(f"FAIL: {dump}: no attention_dump program (--dump or KOE_BUILD_DIR)")
    global torch  # imported here, so that a missing torch is a skip
    try:
        import torch
    except ImportError as e:
        print(f"SKIP: torch is not importable ({e})")
        sys.exit(77)

    start, failed = time.time(), 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "attention.bin")
        for i, case in enumerate(cases(args.quick)):
            failed += not check(dump, args.backend, path, args.seed + i, case)
    n = len(cases(args.quick))
    print(f"test_attention_sdpa: {n} cases, {failed} failed ({time.time() - start:.0f} s)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
