#!/usr/bin/env python3
"""PyTorch + HF transformers baseline for bench/bench.c: the same models (shapes of
host/model/model_config.c's built-in table), the same heads, batches and step (forward + backward +
clip + AdamW), with random weights, in five modes:

  fp32            float32, eager attention: as the original benchmark ran
  bf16            bf16 autocast, SDPA attention: what a PyTorch user gets today
  compile         bf16 autocast, SDPA, torch.compile(model)
  compile-graphs  bf16 autocast, SDPA, torch.compile(model, mode="reduce-overhead"): CUDA graphs
  compile-max     bf16 autocast, SDPA, torch.compile(model, mode="max-autotune"): GEMMs autotuned
                  (Triton templates against cuBLAS), kernels coordinate-descent tuned, CUDA graphs

The compile modes run only for --compile_models x --compile_shapes (or the MODEL:SHAPE pairs of
--compile_runs). The last two are the strongest fair baseline, as a performance-minded user
would write it: static shapes (dynamic=False; "padded" is one shape, "dynamic" padding becomes
buckets, powers of two from 32 up to seq), host batches in pinned memory uploaded with
non_blocking=True, and two optimizer steps measured, the faster kept and named in "optimizer":
AdamW(fused=True) (foreach on the CPU) after an eager clip_grad_norm_, or clip + AdamW(foreach)
in one torch.compile'd function (the model's mode). Their warm-up excludes compilation,
autotuning and CUDA graph recording: max(--warmup, 5) untimed steps per batch shape and
optimizer (step 1 compiles, 2 warms the graph trees up, 3 records, the rest replay), timed
apart: "warmup", "warmup_s" and "warmup_steps_ms" (of the kept optimizer; "optimizer_variants"
has both), "eval_warmup_s". "recompiles_in_timed_steps" (0 when steady) and "cudagraph_skips"
(0 when the graphs ran) prove it; "graph_breaks" counts torch.optim's own two in the compiled
optimizer step (torch/optim/optimizer.py breaks there on purpose). The other modes keep their
old warm-up (--warmup steps on the first batches), so their rows compare with older runs.

bench.c's two shapes (nsmc: seq 128, configs/nsmc/<model>.json train_batch_size or --batch, a
sequence-classification head; korquad: seq 512, batch 8, a QA head) and two padding modes
(padded: every batch seq long; dynamic: padded to its longest row). The row lengths of every
batch come from the files bench.c writes with --lengths_dir (DIR/<shape>-b<B>.json), so both
sides run the same batches; without them, lengths are drawn from bench.c's log-normal (same
parameters, not the same draws). One JSON line per (model, shape, mode, padding), with
bench.c's field names; "mode" is the padding mode and "backend" is torch-<precision>. Step
times synchronise after every step (as bench.c, whose step ends at the loss read);
"train_step_ms_async" is the mean of the same steps run back to back with one final sync.

usage: torch_baseline.py [--device cuda|cpu] [--models a,b] [--modes fp32,bf16,compile,...]
         [--compile_models koelectra-small,koelectra-base] [--compile_shapes nsmc,korquad]
         [--compile_runs MODEL:SHAPE,...] [--shapes nsmc,korquad] [--eval_modes MODES]
         [--pad_modes padded,dynamic] [--lengths_dir DIR] [--steps 20] [--warmup 3]
         [--eval_steps N] [--threads N] [--korquad_batch 8] [--batch N] [--device_name NAME]
         [--peak_tflops X] [--model_config CONFIG.json] [--budget_s S]

Runs go shape by shape, then model by model, then mode by mode, in the order given.
"""
import argparse
import json
import math
import os
import random
import resource
import statistics
import time

import torch
import transformers
from transformers import (BertConfig, BertForQuestionAnswering, BertForSequenceClassification,
                          DistilBertConfig, DistilBertForQuestionAnswering,
                          DistilBertForSequenceClassification, ElectraConfig,
                          ElectraForQuestionAnswering, ElectraForSequenceClassification,
                          XLMRobertaConfig, XLMRobertaForQuestionAnswering,
                          XLMRobertaForSequenceClassification)

BERT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072)
# name: (config class, (seq-cls class, QA class), config kwargs) as host/model/model_config.c's table
MODELS = {
    "koelectra-small": (ElectraConfig, (ElectraForSequenceClassification, ElectraForQuestionAnswering),
                        dict(vocab_size=32200, embedding_size=128, hidden_size=256,
                             num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024)),
    "koelectra-base": (ElectraConfig, (ElectraForSequenceClassification, ElectraForQuestionAnswering),
                       dict(vocab_size=32200, embedding_size=768, **BERT_BASE)),
    "kobert": (BertConfig, (BertForSequenceClassification, BertForQuestionAnswering),
               dict(vocab_size=8002, pad_token_id=1, **BERT_BASE)),
    "hanbert": (BertConfig, (BertForSequenceClassification, BertForQuestionAnswering),
                dict(vocab_size=54000, **BERT_BASE)),
    "distilkobert": (DistilBertConfig, (DistilBertForSequenceClassification, DistilBertForQuestionAnswering),
                     dict(vocab_size=8002, pad_token_id=1, dim=768, n_layers=3, n_heads=12,
                          hidden_dim=3072, sinusoidal_pos_embds=True)),
    "xlm-roberta": (XLMRobertaConfig, (XLMRobertaForSequenceClassification, XLMRobertaForQuestionAnswering),
                    dict(vocab_size=250002, pad_token_id=1, max_position_embeddings=514,
                         type_vocab_size=1, layer_norm_eps=1e-5, **BERT_BASE)),
}
# shape: (seq, head index, log-normal mu and sigma of the row lengths, as bench.c's SHAPES)
SHAPES = {"nsmc": (128, 0, 2.893, 0.682), "korquad": (512, 1, 5.675, 0.277)}
PRECISIONS = ("fp32", "bf16", "compile", "compile-graphs", "compile-max")
COMPILE_MODE = {"compile": None, "compile-graphs": "reduce-overhead", "compile-max": "max-autotune"}
STATIC = ("compile-graphs", "compile-max")  # static shapes, pinned batches, fused optimizers
STATIC_WARMUP = 5  # compile, graph-tree warm-up, record, replay, replay


def card_peak_tflops(name):
    """dense bf16 peak by card name, as bench.c's card_peak_tflops"""
    if "H100" in name and "PCIe" in name:
        return 756
    if "H100" in name or "H200" in name:
        return 989
    return 312 if "A100" in name else 0


def dims(name):
    kw = MODELS[name][2]
    H = kw.get("hidden_size", kw.get("dim"))
    return dict(H=H, E=kw.get("embedding_size", H), L=kw.get("num_hidden_layers", kw.get("n_layers")),
                F=kw.get("intermediate_size", kw.get("hidden_dim")))


def useful_flops(name, qa, lengths, T=None):
    """bench.c's useful_flops: per row of L real tokens (or T executed ones),
    L x (6 x matmul params + 12 x layers x hidden x L) + 6 x the [CLS] head's params"""
    d = dims(name)
    H, E, L = d["H"], d["E"], d["L"]
    per_token = L * (4 * H * H + 2 * H * d["F"]) + (E * H if E != H else 0)
    per_row = 0 if qa else H * H + H * 2
    per_token += H * 2 if qa else 0
    return sum((T or n) * (6 * per_token + 12 * L * H * (T or n)) + 6 * per_row for n in lengths)


def batch_size(name, shape, args):
    if shape == "korquad":
        return args.korquad_batch
    if args.batch:
        return args.batch
    with open(os.path.join(args.configs, "nsmc", name + ".json")) as f:
        return json.load(f)["train_batch_size"]


def batch_lengths(shape, B, args):
    """every batch's row lengths: bench.c's file, else bench.c's distribution"""
    path = os.path.join(args.lengths_dir or "", f"{shape}-b{B}.json")
    if args.lengths_dir and os.path.exists(path):
        with open(path) as f:
            d = json.load(f)
        return d["batches"], d["data"]
    T, _, mu, sigma = SHAPES[shape]
    rng = random.Random(88172645463325252)
    n = args.warmup + max(args.steps, args.eval_steps)
    draw = lambda: min(T, max(3, round(math.exp(rng.gauss(mu, sigma)))))
    return [[draw() for _ in range(B)] for _ in range(n)], "random (log-normal lengths)"


def padded_len(lengths, T, padding):
    """padded: T; dynamic: the longest row; bucketed: the next power of two (32 at least, T at
    most) above the longest row, so that a static-shape compile sees few shapes"""
    n = max(lengths)
    if padding == "padded":
        return T
    return n if padding == "dynamic" else min(T, max(32, 1 << (n - 1).bit_length()))


def make_batch(lengths, T, vocab, pad, padding, qa, gen):
    """host tensors: random ids in [5, vocab) on real tokens, pad ids after them"""
    B = len(lengths)
    T = padded_len(lengths, T, padding)
    ids = torch.randint(5, vocab, (B, T), generator=gen)
    ids[ids == pad] = 5
    mask = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids[mask == 0] = pad
    n = torch.tensor(lengths)
    labels = (dict(start_positions=n // 2, end_positions=n // 2 + (n > 8).long() * 3) if qa
              else dict(labels=torch.randint(0, 2, (B,), generator=gen)))
    return dict(input_ids=ids, attention_mask=mask, **labels)


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def build(name, shape, precision, device):
    config_cls, model_classes, kw = MODELS[name]
    attn = "eager" if precision == "fp32" else "sdpa"
    # the problem type HF would set in the first forward: set later, it recompiles the model
    problem = "single_label_classification" if SHAPES[shape][1] == 0 else None
    config = config_cls(num_labels=2, attn_implementation=attn, problem_type=problem, **kw)
    with torch.device(device):  # initialise on the device: XLM-R's embeddings are big
        model = model_classes[SHAPES[shape][1]](config)
    return model.train()


def optimizers(model, precision, device):
    """(label, factory) per optimizer step to measure; a factory gives the optimizer and its
    step (clip to norm 1 + AdamW)"""
    params = list(model.parameters())

    def eager(**kw):
        opt = torch.optim.AdamW(params, lr=5e-5, eps=1e-8, weight_decay=0.0, **kw)

        def step():
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        return opt, step

    def compiled():
        opt, step = eager(foreach=True)
        return opt, torch.compile(step, mode=COMPILE_MODE[precision])

    if precision not in STATIC:
        return [("AdamW (default), eager clip", eager)]
    if device == "cuda":
        return [("AdamW(fused=True), eager clip", lambda: eager(fused=True)),
                ("compiled clip + AdamW(foreach=True)", compiled)]
    return [("AdamW(foreach=True), eager clip", lambda: eager(foreach=True)),
            ("compiled clip + AdamW(foreach=True)", compiled)]


def step_fns(model, fwd, opt, opt_step, precision, device, qa):
    """the train and eval steps; static modes copy pinned batches asynchronously"""
    static = precision in STATIC
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision != "fp32")
    upload = lambda b, keys: {k: b[k].to(device, non_blocking=static) for k in keys}

    def train_step(b):
        if static:  # a new iteration for CUDA graph trees (the last step's outputs are dead)
            torch.compiler.cudagraph_mark_step_begin()
        b = upload(b, list(b))
        with autocast:
            loss = fwd(**b).loss
        loss.backward()
        opt_step()
        opt.zero_grad(set_to_none=True)

    def eval_step(b):
        if static:
            torch.compiler.cudagraph_mark_step_begin()
        b = upload(b, ("input_ids", "attention_mask"))
        with torch.no_grad(), autocast:
            out = fwd(**b)
        (out.logits if not qa else out.start_logits).float().sum().item()
    return train_step, eval_step


def timed(step, batches, device):
    times = []
    for b in batches:
        sync(device)
        t0 = time.perf_counter()
        step(b)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def compiles():
    """frames torch.compile has compiled so far (a recompile adds one)"""
    return torch._dynamo.utils.counters["frames"]["ok"]


def warmup_batches(host, timed_b, W, static):
    """the old modes: the first W batches; static shapes: W batches of each shape timed later
    (each shape compiles, autotunes and records its CUDA graphs once)"""
    if not static:
        return host[:W]
    by_shape = {}
    for b in timed_b:
        by_shape.setdefault(tuple(b["input_ids"].shape), []).append(b)
    return [b for same in by_shape.values() for b in (same * W)[:W]]


def measure(step, warm, timed_b, device):
    """warm-up steps, then the timed ones synchronised each, then the same back to back"""
    warm_t = timed(step, warm, device)
    n0 = compiles()
    train_t = timed(step, timed_b, device)
    sync(device)
    t0 = time.perf_counter()
    for b in timed_b:
        step(b)
    sync(device)
    async_ms = (time.perf_counter() - t0) / len(timed_b) * 1e3
    return dict(warm_t=warm_t, train_t=train_t, async_ms=async_ms, recompiles=compiles() - n0)


def peak_mib(device):
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak RSS so far (KiB)


def train_variants(model, fwd, precision, qa, host, train_b, W, device):
    """measure every optimizer step of optimizers(); the fastest run first, then the others"""
    runs = []
    for label, make in optimizers(model, precision, device):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            opt, opt_step = make()
            train_step, _ = step_fns(model, fwd, opt, opt_step, precision, device, qa)
            run = measure(train_step, warmup_batches(host, train_b, W, precision in STATIC),
                          train_b, device)
            runs.append(dict(run, optimizer=label, peak=peak_mib(device)))
        except Exception as exc:  # one failing optimizer step must not hide the other
            runs.append(dict(optimizer=label, error=str(exc)[:200]))
        opt = opt_step = train_step = None  # free this optimizer's state before the next
        model.zero_grad(set_to_none=True)
    median = lambda r: statistics.median(r["train_t"])
    ok = sorted((r for r in runs if "error" not in r), key=median)
    if not ok:
        raise RuntimeError("; ".join(f"{r['optimizer']}: {r['error']}" for r in runs))
    return ok + [r for r in runs if "error" in r]


def run_padding(model, fwd, name, shape, precision, pad_mode, batches, args, info):
    device, (T, head, _, _) = args.device, SHAPES[shape]
    qa, static = head == 1, precision in STATIC
    torch._dynamo.utils.counters.clear()  # graph breaks and CUDA graph skips of this row
    vocab, pad = model.config.vocab_size, model.config.pad_token_id or 0
    padding = "bucketed" if static and pad_mode == "dynamic" else pad_mode
    gen = torch.Generator().manual_seed(0)
    host = [make_batch(l, T, vocab, pad, padding, qa, gen) for l in batches]
    if static and device == "cuda":
        host = [{k: v.pin_memory() for k, v in b.items()} for b in host]
    W = max(args.warmup, STATIC_WARMUP) if static else args.warmup
    train_b = [host[(args.warmup + i) % len(host)] for i in range(args.steps)]
    runs = train_variants(model, fwd, precision, qa, host, train_b, W, device)
    lens = lambda bs: [b["attention_mask"].sum(1).tolist() for b in bs]
    Ts = lambda bs: [b["input_ids"].shape[1] for b in bs]
    tr = phase_stats(runs[0]["train_t"], lens(train_b), Ts(train_b), name, qa)
    ev = None
    if precision in (args.eval_modes or args.modes).split(","):
        eval_b = [host[(args.warmup + i) % len(host)] for i in range(args.eval_steps)]
        eval_warm = (warmup_batches(eval_b, eval_b, W, True) if static
                     else eval_b[:2 if precision == "compile" else 1])
        _, eval_step = step_fns(model, fwd, None, None, precision, device, qa)
        model.eval()
        eval_warmup_s = sum(timed(eval_step, eval_warm, device))
        ev = phase_stats(timed(eval_step, eval_b, device), lens(eval_b), Ts(eval_b), name, qa)
        ev["warmup_s"] = eval_warmup_s
        model.train()
    report(name, shape, pad_mode, precision, model, runs, tr, ev, padding, args, info)


def phase_stats(times, lengths_list, Ts, name, qa):
    real = sum(sum(l) for l in lengths_list)
    samples = sum(len(l) for l in lengths_list)
    s = sum(times)
    return dict(seconds=s, samples=samples, real=real,
                exec_tokens=sum(len(l) * T for l, T in zip(lengths_list, Ts)),
                flops=sum(useful_flops(name, qa, l) for l in lengths_list),
                exec_flops=sum(useful_flops(name, qa, l, T) for l, T in zip(lengths_list, Ts)))


def pct(sorted_times, p):
    return sorted_times[round(p * (len(sorted_times) - 1))]


def variant(run):
    """one optimizer step's outcome: its warm-up and median step, or its error"""
    if "error" in run:
        return dict(optimizer=run["optimizer"], error=run["error"])
    return dict(optimizer=run["optimizer"], warmup_s=round(sum(run["warm_t"]), 1),
                train_step_ms_median=round(statistics.median(run["train_t"]) * 1e3, 3))


def report(name, shape, mode, precision, model, runs, tr, ev, padding, args, info):
    best = runs[0]
    st = sorted(best["train_t"])
    tflops = tr["flops"] / tr["seconds"] / 1e12
    out = dict(model=name, shape=shape, mode=mode, backend="torch-" + precision,
               device=info["device"], threads=torch.get_num_threads(), batch=info["B"],
               seq=SHAPES[shape][0], data=info["data"],
               params=sum(p.numel() for p in model.parameters() if p.requires_grad),
               steps=len(st), warmup=len(best["warm_t"]),
               train_step_ms_median=round(statistics.median(st) * 1e3, 3),
               train_step_ms_p10=round(pct(st, 0.1) * 1e3, 3), train_step_ms_p90=round(pct(st, 0.9) * 1e3, 3),
               train_step_ms_min=round(st[0] * 1e3, 3), train_step_ms_max=round(st[-1] * 1e3, 3),
               train_step_ms_async=round(best["async_ms"], 3),
               mean_real_len=round(tr["real"] / tr["samples"], 1),
               mean_padded_len=round(tr["exec_tokens"] / tr["samples"], 1),
               train_samples_per_s=round(tr["samples"] / tr["seconds"], 2),
               train_real_tokens_per_s=round(tr["real"] / tr["seconds"], 1),
               train_tflops=round(tflops, 4),
               train_exec_tflops=round(tr["exec_flops"] / tr["seconds"] / 1e12, 4))
    if info["peak_tflops"] > 0:
        out["mfu"] = round(tflops / info["peak_tflops"], 4)
    if ev:
        out.update(eval_samples_per_s=round(ev["samples"] / ev["seconds"], 2),
                   eval_real_tokens_per_s=round(ev["real"] / ev["seconds"], 1),
                   eval_warmup_s=round(ev["warmup_s"], 1))
    counters = torch._dynamo.utils.counters
    out.update(peak_mem_mib=round(best["peak"]), warmup_s=round(sum(best["warm_t"]), 1),
               warmup_steps_ms=[round(t * 1e3, 1) for t in best["warm_t"]],
               optimizer=best["optimizer"], padding=padding,
               recompiles_in_timed_steps=best["recompiles"],
               graph_breaks=sum(counters["graph_break"].values()),
               cudagraph_skips=counters["inductor"]["cudagraph_skips"],
               optimizer_variants=[variant(r) for r in runs],
               torch=torch.__version__, transformers=transformers.__version__)
    print(json.dumps(out), flush=True)


def run(name, shape, precision, args, info):
    """one model, shape and precision; the padding modes share the (compiled) model"""
    device = args.device
    torch.manual_seed(0)
    model = build(name, shape, precision, device)
    fwd = model
    if precision in COMPILE_MODE:  # static shapes: every new shape compiles anew
        fwd = torch.compile(model, mode=COMPILE_MODE[precision],
                            dynamic=False if precision in STATIC else None)
    info["B"] = batch_size(name, shape, args)
    batches, info["data"] = batch_lengths(shape, info["B"], args)
    for pad_mode in args.pad_modes.split(","):
        try:
            run_padding(model, fwd, name, shape, precision, pad_mode, batches, args, info)
        except Exception as exc:  # one failing run must not hide the others
            print(json.dumps(dict(model=name, shape=shape, mode=pad_mode, backend="torch-" + precision,
                                  error=str(exc)[:300])), flush=True)
    del model, fwd
    if device == "cuda":
        torch.cuda.empty_cache()


def wanted(name, shape, precision, args):
    """the compile modes run only for the chosen models and shapes (compiling takes minutes)"""
    if precision not in COMPILE_MODE:
        return True
    if args.compile_runs:
        return f"{name}:{shape}" in args.compile_runs.split(",")
    return name in args.compile_models.split(",") and shape in args.compile_shapes.split(",")


def add_model_config(path):
    """a model from a Hugging Face config.json (ELECTRA or BERT), named after the file"""
    with open(path) as f:
        kw = json.load(f)
    family = {"electra": "koelectra-base", "bert": "kobert"}.get(kw.pop("model_type", None))
    if family is None:
        raise SystemExit(f"{path}: model_type must be electra or bert")
    kw.pop("architectures", None)
    name = os.path.splitext(os.path.basename(path))[0]
    MODELS[name] = MODELS[family][:2] + (kw,)
    return name


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="koelectra-small,koelectra-base")
    p.add_argument("--modes", default="fp32,bf16,compile")
    p.add_argument("--compile_models", default="koelectra-small,koelectra-base")
    p.add_argument("--compile_shapes", default="nsmc,korquad")
    p.add_argument("--compile_runs", default="", help="MODEL:SHAPE,...: instead of the two above")
    p.add_argument("--eval_modes", default="", help="modes that also time eval (default: all)")
    p.add_argument("--shapes", default="nsmc,korquad")
    p.add_argument("--pad_modes", default="padded,dynamic")
    p.add_argument("--lengths_dir", default=None)
    p.add_argument("--configs", default="configs")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--eval_steps", type=int, default=0, help="default: --steps")
    p.add_argument("--korquad_batch", type=int, default=8)
    p.add_argument("--batch", type=int, default=0, help="nsmc batch (default: the model's config)")
    p.add_argument("--model_config", default="", help="ELECTRA/BERT config.json: one more model")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device_name", default="")
    p.add_argument("--peak_tflops", type=float, default=0)
    p.add_argument("--budget_s", type=float, default=0, help="start no run after this many seconds")
    args = p.parse_args()
    args.eval_steps = args.eval_steps or args.steps
    if args.model_config:
        add_model_config(args.model_config)
    unknown = [m for m in args.modes.split(",") if m not in PRECISIONS]
    if unknown:
        raise SystemExit(f"--modes: unknown {','.join(unknown)} (known: {','.join(PRECISIONS)})")
    torch._dynamo.config.cache_size_limit = 32  # bucket shapes x train/eval, each compiled
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device == "cuda" else (args.device_name or "cpu")
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    peak = args.peak_tflops or (card_peak_tflops(name) if args.device == "cuda" else 0)
    info = dict(device=name, peak_tflops=peak)
    t0 = time.perf_counter()
    for shape in args.shapes.split(","):
        for model_name in args.models.split(","):
            for precision in args.modes.split(","):
                if not wanted(model_name, shape, precision, args):
                    continue
                if args.budget_s and time.perf_counter() - t0 > args.budget_s:
                    print(json.dumps(dict(model=model_name, shape=shape, backend="torch-" + precision,
                                          error=f"not run: past --budget_s {args.budget_s:g}")),
                          flush=True)
                    continue
                try:
                    run(model_name, shape, precision, args, info)
                except Exception as exc:
                    print(json.dumps(dict(model=model_name, shape=shape, backend="torch-" + precision,
                                          error=str(exc)[:300])), flush=True)


if __name__ == "__main__":
    main()
