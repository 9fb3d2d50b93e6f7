#!/usr/bin/env python3
"""PyTorch + HF transformers baseline for bench/bench.c: the same models (shapes of
host/model/model_config.c's built-in table), the same heads, batches and step (forward + backward +
clip + AdamW), with random weights, in three precision modes:

  fp32     float32, eager attention: as the original benchmark ran
  bf16     bf16 autocast, SDPA attention: what a PyTorch user gets today
  compile  bf16 autocast, SDPA, torch.compile(model) (only for --compile_models)

and bench.c's two shapes (nsmc: seq 128, configs/nsmc/<model>.json train_batch_size, a
sequence-classification head; korquad: seq 512, batch 8, a QA head) and two padding modes
(padded: every batch seq long; dynamic: padded to its longest row). The row lengths of every
batch come from the files bench.c writes with --lengths_dir (DIR/<shape>-b<B>.json), so both
sides run the same batches; without them, lengths are drawn from bench.c's log-normal (same
parameters, not the same draws). One JSON line per (model, shape, mode, padding), with
bench.c's field names; "mode" is the padding mode and "backend" is torch-<precision>.

usage: torch_baseline.py [--device cuda|cpu] [--models a,b] [--modes fp32,bf16,compile]
         [--compile_models koelectra-small,koelectra-base] [--compile_shapes nsmc,korquad]
         [--shapes nsmc,korquad]
         [--pad_modes padded,dynamic] [--lengths_dir DIR] [--steps 20] [--warmup 3]
         [--eval_steps N] [--threads N] [--korquad_batch 8] [--device_name NAME]
         [--peak_tflops X]
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


def make_batch(lengths, T, vocab, pad, dynamic, qa, gen):
    """host tensors: random ids in [5, vocab) on real tokens, pad ids after them"""
    B = len(lengths)
    T = max(lengths) if dynamic else T
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
    config = config_cls(num_labels=2, attn_implementation=attn, **kw)
    with torch.device(device):  # initialise on the device: XLM-R's embeddings are big
        model = model_classes[SHAPES[shape][1]](config)
    return model.train()


def timed(step, batches, device):
    times = []
    for b in batches:
        sync(device)
        t0 = time.perf_counter()
        step(b)
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


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


def run_padding(model, opt, fwd, name, shape, precision, dynamic, batches, args, info):
    device, (T, head, _, _) = args.device, SHAPES[shape]
    qa = head == 1
    vocab, pad = model.config.vocab_size, model.config.pad_token_id or 0
    gen = torch.Generator().manual_seed(0)
    host = [make_batch(l, T, vocab, pad, dynamic, qa, gen) for l in batches]
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision != "fp32")

    def train_step(b):
        b = {k: v.to(device) for k, v in b.items()}
        with autocast:
            loss = fwd(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def eval_step(b):
        b = {k: v.to(device) for k, v in b.items() if k in ("input_ids", "attention_mask")}
        with torch.no_grad(), autocast:
            out = fwd(**b)
        (out.logits if not qa else out.start_logits).float().sum().item()

    W = args.warmup
    model.train()
    t0 = time.perf_counter()
    timed(train_step, host[:W], device)
    warmup_s = time.perf_counter() - t0
    train_b = [host[(W + i) % len(host)] for i in range(args.steps)]
    train_t = timed(train_step, train_b, device)
    model.eval()
    eval_b = [host[(W + i) % len(host)] for i in range(args.eval_steps)]
    timed(eval_step, eval_b[:2 if precision == "compile" else 1], device)
    eval_t = timed(eval_step, eval_b, device)
    model.train()
    lens = lambda bs: [b["attention_mask"].sum(1).tolist() for b in bs]
    Ts = lambda bs: [b["input_ids"].shape[1] for b in bs]
    tr = phase_stats(train_t, lens(train_b), Ts(train_b), name, qa)
    ev = phase_stats(eval_t, lens(eval_b), Ts(eval_b), name, qa)
    return report(name, shape, "dynamic" if dynamic else "padded", precision, model, train_t, tr,
                  ev, warmup_s, args, info)


def report(name, shape, mode, precision, model, train_t, tr, ev, warmup_s, args, info):
    st = sorted(train_t)
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # the process's peak RSS so far (kilobytes on Linux)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tflops = tr["flops"] / tr["seconds"] / 1e12
    out = dict(model=name, shape=shape, mode=mode, backend="torch-" + precision,
               device=info["device"], threads=torch.get_num_threads(), batch=info["B"],
               seq=SHAPES[shape][0], data=info["data"],
               params=sum(p.numel() for p in model.parameters() if p.requires_grad),
               steps=len(train_t), warmup=args.warmup,
               train_step_ms_median=round(statistics.median(st) * 1e3, 3),
               train_step_ms_p10=round(pct(st, 0.1) * 1e3, 3), train_step_ms_p90=round(pct(st, 0.9) * 1e3, 3),
               train_step_ms_min=round(st[0] * 1e3, 3), train_step_ms_max=round(st[-1] * 1e3, 3),
               mean_real_len=round(tr["real"] / tr["samples"], 1),
               mean_padded_len=round(tr["exec_tokens"] / tr["samples"], 1),
               train_samples_per_s=round(tr["samples"] / tr["seconds"], 2),
               train_real_tokens_per_s=round(tr["real"] / tr["seconds"], 1),
               train_tflops=round(tflops, 4),
               train_exec_tflops=round(tr["exec_flops"] / tr["seconds"] / 1e12, 4))
    if info["peak_tflops"] > 0:
        out["mfu"] = round(tflops / info["peak_tflops"], 4)
    out.update(eval_samples_per_s=round(ev["samples"] / ev["seconds"], 2),
               eval_real_tokens_per_s=round(ev["real"] / ev["seconds"], 1),
               peak_mem_mib=round(peak), warmup_s=round(warmup_s, 1),
               torch=torch.__version__, transformers=transformers.__version__)
    print(json.dumps(out), flush=True)


def run(name, shape, precision, args, info):
    """one model, shape and precision; the padding modes share the (compiled) model"""
    device = args.device
    torch.manual_seed(0)
    model = build(name, shape, precision, device)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0)
    fwd = torch.compile(model) if precision == "compile" else model
    info["B"] = batch_size(name, shape, args)
    batches, info["data"] = batch_lengths(shape, info["B"], args)
    for pad_mode in args.pad_modes.split(","):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            run_padding(model, opt, fwd, name, shape, precision, pad_mode == "dynamic", batches,
                        args, info)
        except Exception as exc:  # one failing run must not hide the others
            print(json.dumps(dict(model=name, shape=shape, mode=pad_mode, backend="torch-" + precision,
                                  error=str(exc)[:300])), flush=True)
    del model, opt, fwd
    if device == "cuda":
        torch.cuda.empty_cache()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="koelectra-small,koelectra-base")
    p.add_argument("--modes", default="fp32,bf16,compile")
    p.add_argument("--compile_models", default="koelectra-small,koelectra-base")
    p.add_argument("--compile_shapes", default="nsmc,korquad")
    p.add_argument("--shapes", default="nsmc,korquad")
    p.add_argument("--pad_modes", default="padded,dynamic")
    p.add_argument("--lengths_dir", default=None)
    p.add_argument("--configs", default="configs")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--eval_steps", type=int, default=0, help="default: --steps")
    p.add_argument("--korquad_batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device_name", default="")
    p.add_argument("--peak_tflops", type=float, default=0)
    args = p.parse_args()
    args.eval_steps = args.eval_steps or args.steps
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device == "cuda" else (args.device_name or "cpu")
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    peak = args.peak_tflops or (card_peak_tflops(name) if args.device == "cuda" else 0)
    info = dict(device=name, peak_tflops=peak)
    for model_name in args.models.split(","):
        for shape in args.shapes.split(","):
            for precision in args.modes.split(","):
                if precision == "compile" and (model_name not in args.compile_models.split(",")
                                               or shape not in args.compile_shapes.split(",")):
                    continue
                try:
                    run(model_name, shape, precision, args, info)
                except Exception as exc:
                    print(json.dumps(dict(model=model_name, shape=shape, backend="torch-" + precision,
                                          error=str(exc)[:300])), flush=True)


if __name__ == "__main__":
    main()
