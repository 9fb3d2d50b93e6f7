"""Tokenizer speed of HF's Rust fast tokenizer on the job bench/tokenize_bench.c times: read
NSMC train (strip, split on tab, skip the header, text column 1, as the original processor),
then batch-encode every review with [CLS]/[SEP], truncation and padding to max_len, on one
thread. Prints examples/s for the best of --repeat runs (wall clock, and process CPU time,
which a loaded machine disturbs less), and with --compare counts the rows
whose input ids differ from tokenize_bench's --dump file.

  TOKENIZERS_PARALLELISM=false python3 bench/tokenize_bench.py [--file PATH] [--vocab-dir DIR]
      [--max-len N] [--repeat N] [--compare ids.bin]

Used with transformers 5.24.0 (BertTokenizer is the tokenizers-backed fast one) and
tokenizers 0.23.3.
"""
import argparse
import json
import os
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread, before tokenizers is loaded
os.environ["RAYON_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
from transformers import BertTokenizerFast  # noqa: E402


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    return [line.strip().split("\t")[1] for line in lines[1:]]


def run_once(tok, path, max_len):
    t0, c0 = time.perf_counter(), time.process_time()
    texts = read_texts(path)
    enc = tok(texts, max_length=max_len, truncation=True, padding="max_length")
    return time.perf_counter() - t0, time.process_time() - c0, enc["input_ids"]


def run_once_backend(tok, path, max_len):
    """the same through the Rust tokenizer alone (tokenizers' encode_batch), without
    transformers' Python wrapper: the fast tokenizer's best case"""
    t0, c0 = time.perf_counter(), time.process_time()
    texts = read_texts(path)
    encs = tok.encode_batch(texts)
    ids = [e.ids for e in encs]
    return time.perf_counter() - t0, time.process_time() - c0, ids


def compare(ids, path, max_len):
    ours = np.fromfile(path, dtype=np.int32).reshape(-1, max_len)
    theirs = np.asarray(ids, dtype=np.int32)
    if ours.shape != theirs.shape:
        return {"rows_ours": ours.shape[0], "rows_hf": theirs.shape[0], "mismatch": None}
    bad = np.nonzero((ours != theirs).any(axis=1))[0]
    return {"rows": int(ours.shape[0]), "mismatch": int(bad.size), "first": bad[:10].tolist()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--file", default="../shared/data/nsmc/ratings_train.txt")
    p.add_argument("--vocab-dir", default="../shared/vocab/koelectra-base-v3-discriminator",
                   help="folder with vocab.txt")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--compare")
    a = p.parse_args()
    # from_pretrained: transformers 5 ignores a vocab_file= argument (4.x called it that)
    tok = BertTokenizerFast.from_pretrained(a.vocab_dir, do_lower_case=False)
    assert len(tok) > 5, "the vocabulary did not load"
    backend = tok.backend_tokenizer
    backend.enable_truncation(a.max_len)
    backend.enable_padding(length=a.max_len, pad_id=tok.pad_token_id, pad_token=tok.pad_token)
    for name, fn, t in (("hf-fast (transformers call)", run_once, tok),
                        ("hf-fast (tokenizers encode_batch)", run_once_backend, backend)):
        best, best_cpu, ids = None, None, None
        for r in range(a.repeat):
            s, cpu, ids = fn(t, a.file, a.max_len)
            print(f"{name} run {r + 1}: {len(ids)} examples in {s:.3f} s, cpu {cpu:.3f} s "
                  f"({len(ids) / s:.0f} examples/s)")
            best = s if best is None else min(best, s)
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        print(json.dumps({"impl": name, "examples": len(ids), "best_s": round(best, 4),
                          "examples_per_s": round(len(ids) / best),
                          "best_cpu_s": round(best_cpu, 4),
                          "examples_per_cpu_s": round(len(ids) / best_cpu)}))
        if a.compare:
            print(json.dumps(compare(ids, a.compare, a.max_len)))


if __name__ == "__main__":
    main()
