#!/usr/bin/env python3
"""PyTorch CPU baseline: time one training step of ElectraForSequenceClassification.

One step = forward + loss + backward + clip_grad_norm_(1.0) + AdamW step + zero_grad, in
float32 with dropout 0.1 on (model.train()), as the finetuning loop does. Random token ids
and labels; 2 warm-up steps, then K timed steps. Prints one JSON line per model:
  {model, batch, seq, threads, step_ms_median, step_ms_min, samples_per_s, torch_version, ...}

usage: python3 bench/torch_cpu_step.py [--threads 2] [--steps 3] [--models small,base]
"""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import ElectraConfig, ElectraForSequenceClassification

SHAPES = {
    # koelectra-small-v3 / koelectra-base-v3 shapes (vocab 35000)
    "small": dict(embedding_size=128, hidden_size=256, num_hidden_layers=12,
                  num_attention_heads=4, intermediate_size=1024, batch=32, seq=128),
    "base": dict(embedding_size=768, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, batch=8, seq=128),
}


def make_model(s):
    config = ElectraConfig(vocab_size=35000, embedding_size=s["embedding_size"],
                           hidden_size=s["hidden_size"], num_hidden_layers=s["num_hidden_layers"],
                           num_attention_heads=s["num_attention_heads"],
                           intermediate_size=s["intermediate_size"], max_position_embeddings=512,
                           hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                           num_labels=2)
    return ElectraForSequenceClassification(config).train()


def make_optimizer(model):
    # the benchmark's no-decay rule: names containing "bias" or "LayerNorm.weight"
    no_decay = ("bias", "LayerNorm.weight")
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=5e-5, eps=1e-8)


def train_step(model, opt, ids, mask, labels):
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def bench(name, steps, threads):
    s = SHAPES[name]
    torch.manual_seed(0)
    model = make_model(s)
    opt = make_optimizer(model)
    B, T = s["batch"], s["seq"]
    ids = torch.randint(5, 35000, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    labels = torch.randint(0, 2, (B,))
    for _ in range(2):
        train_step(model, opt, ids, mask, labels)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        train_step(model, opt, ids, mask, labels)
        times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    return {"model": "koelectra-" + name, "batch": B, "seq": T, "threads": threads,
            "step_ms_median": round(med, 1), "step_ms_min": round(min(times), 1),
            "samples_per_s": round(B / (med / 1e3), 2), "steps": steps,
            "params": sum(p.numel() for p in model.parameters()),
            "attn_implementation": model.config._attn_implementation,
            "optimizer": "torch.optim.AdamW", "torch_version": torch.__version__,
            "transformers_version": transformers.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed steps K (after 2 warm-ups)")
    ap.add_argument("--models", default="small,base")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        print(json.dumps(bench(name, args.steps, args.threads)), flush=True)


if __name__ == "__main__":
    main()
