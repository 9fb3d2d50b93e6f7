#!/usr/bin/env python3
"""PyTorch + HF transformers baseline for bench/bench.c: the same models, shapes and step
(forward + backward + clip + AdamW) with random weights and ids, in three modes:

  fp32     float32, eager attention: as the original benchmark ran
  bf16     bf16 autocast, SDPA attention: what a PyTorch user gets today
  compile  bf16 autocast, SDPA, torch.compile(model)

One JSON line per (model, mode), fields named as bench.c's.
usage: torch_baseline.py [--device cuda|cpu] [--models a,b] [--modes fp32,bf16,compile]
                         [--batch 32] [--seq 128] [--steps 20] [--warmup 3] [--threads N]
"""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, ElectraConfig,
                          ElectraForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification)

# the documented models (shared/reference/README.md), as in host/model_config.c's table
MODELS = {
    "koelectra-small": (ElectraConfig, ElectraForSequenceClassification,
                        dict(vocab_size=35000, embedding_size=128, hidden_size=256,
                             num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024)),
    "koelectra-base": (ElectraConfig, ElectraForSequenceClassification,
                       dict(vocab_size=35000, embedding_size=768, hidden_size=768,
                            num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)),
    "kobert": (BertConfig, BertForSequenceClassification,
               dict(vocab_size=8002, hidden_size=768, num_hidden_layers=12,
                    num_attention_heads=12, intermediate_size=3072)),
    "hanbert": (BertConfig, BertForSequenceClassification,
                dict(vocab_size=54000, hidden_size=768, num_hidden_layers=12,
                     num_attention_heads=12, intermediate_size=3072)),
    "distilkobert": (DistilBertConfig, DistilBertForSequenceClassification,
                     dict(vocab_size=8002, dim=768, n_layers=3, n_heads=12, hidden_dim=3072)),
    "xlm-roberta": (XLMRobertaConfig, XLMRobertaForSequenceClassification,
                    dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12,
                         num_attention_heads=12, intermediate_size=3072,
                         max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)),
}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def build(name, mode, device):
    config_cls, model_cls, kw = MODELS[name]
    attn = "eager" if mode == "fp32" else "sdpa"
    model = model_cls(config_cls(num_labels=2, attn_implementation=attn, **kw)).to(device)
    model.train()
    return model


def run(name, mode, args):
    device = args.device
    torch.manual_seed(0)
    model = build(name, mode, device)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0)
    fwd = torch.compile(model) if mode == "compile" else model
    vocab = model.config.vocab_size
    ids = torch.randint(5, vocab, (args.batch, args.seq), device=device)
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 2, (args.batch,), device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=mode != "fp32")

    def train_step():
        with autocast:
            loss = fwd(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def eval_step():
        with torch.no_grad(), autocast:
            fwd(input_ids=ids, attention_mask=mask).logits

    def timed(step, n):
        times = []
        for _ in range(n):
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - t0)
        return times

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    timed(train_step, args.warmup)
    warmup_s = time.perf_counter() - t0
    times = timed(train_step, args.steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0
    model.eval()
    timed(eval_step, 2)
    eval_med = statistics.median(timed(eval_step, args.steps))
    med = statistics.median(times)
    tokens = args.batch * args.seq
    out = dict(model=name, backend="torch-" + mode, device=torch.cuda.get_device_name() if device == "cuda" else "cpu",
               batch=args.batch, seq=args.seq, train_step_ms_median=round(med * 1e3, 2),
               train_step_ms_min=round(min(times) * 1e3, 2), train_step_ms_max=round(max(times) * 1e3, 2),
               train_samples_per_s=round(args.batch / med, 1), train_tokens_per_s=round(tokens / med),
               eval_samples_per_s=round(args.batch / eval_med, 1), peak_mem_mib=round(peak),
               warmup_s=round(warmup_s, 1), torch=torch.__version__, transformers=transformers.__version__)
    print(json.dumps(out), flush=True)
    del model, opt, fwd
    if device == "cuda":
        torch.cuda.empty_cache()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="koelectra-small,koelectra-base")
    p.add_argument("--modes", default="fp32,bf16,compile")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    for name in args.models.split(","):
        for mode in args.modes.split(","):
            try:
                run(name, mode, args)
            except Exception as exc:  # one failing mode must not hide the others
                print(json.dumps(dict(model=name, backend="torch-" + mode, error=str(exc)[:300])), flush=True)


if __name__ == "__main__":
    main()
