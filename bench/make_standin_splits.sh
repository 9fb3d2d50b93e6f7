#!/usr/bin/env bash
# Stand-in training splits for the tasks whose train files are not available here
# (../shared/data/README.md): NOT the benchmark's data, only a way to show that run_ner and
# run_squad learn. Writes OUT (default local/standin) from DATA (default ../shared/data):
#   naver-ner/train.tsv  the first 90% (8,100 lines) of naver-ner/test.tsv
#   naver-ner/test.tsv   the last 10% (900 lines)
#   korquad/KorQuAD_v1.0_train.json  the first 120 of the 140 dev articles
#   korquad/KorQuAD_v1.0_dev.json    the last 20 dev articles
set -euo pipefail
data="${DATA:-../shared/data}"
out="${1:-local/standin}"
mkdir -p "$out/naver-ner" "$out/korquad"
head -n 8100 "$data/naver-ner/test.tsv" > "$out/naver-ner/train.tsv"
tail -n 900 "$data/naver-ner/test.tsv" > "$out/naver-ner/test.tsv"
python3 - "$data/korquad/KorQuAD_v1.0_dev.json" "$out/korquad" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
d = json.load(open(src, encoding="utf-8"))
for name, part in (("KorQuAD_v1.0_train.json", d["data"][:120]), ("KorQuAD_v1.0_dev.json", d["data"][120:])):
    json.dump({"version": d["version"] + " (stand-in split)", "data": part},
              open(f"{out}/{name}", "w", encoding="utf-8"), ensure_ascii=False)
PY
wc -l "$out/naver-ner/"*.tsv
ls -la "$out/korquad"
