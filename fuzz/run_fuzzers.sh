#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined, the project's
# sources compiled in directly) and runs each for a fixed time from a small seed corpus made
# from the project's own test inputs. Exits non-zero when any target finds a crash, a leak,
# undefined behaviour or a broken invariant; the input that did it is left in OUT/crashes/.
#
#   fuzz/run_fuzzers.sh [SECONDS_PER_TARGET (default 60; 0: no limit)] [TARGET...]
#
# TARGET defaults to every fuzz/fuzz_*.c, one after the other (one process at a time).
# FUZZ_FLAGS adds libFuzzer flags (they override the defaults below), e.g. a campaign of
# 10 million executions: FUZZ_FLAGS=-runs=10000000 fuzz/run_fuzzers.sh 0 fuzz_torchbin.
# The corpus kept in OUT/corpus/TARGET grows from run to run.
#
# Adding a target: fuzz/fuzz_<name>.c, the host sources it needs in SOURCES, its name in
# JSON_TARGETS when it reads JSON, and its seeds: files committed in fuzz/seeds/fuzz_<name>/
# or a seeds_<name> function below (or both).
#
# Needs clang with libFuzzer (Debian/Ubuntu: clang-14 libclang-rt-14-dev) and the project's
# -dev packages (libcjson, libutf8proc, libsentencepiece, libzip). OUT defaults to
# build-fuzzers/. KOE_FUZZ_VOCAB=path/vocab.txt makes the tokenizer targets use that
# vocabulary instead of the small one they write. Not part of ctest or CI.
set -u
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))
TARGETS=${*:-$(basename -s .c fuzz/fuzz_*.c)}
OUT=${OUT:-build-fuzzers}
DATA=${KOELECTRA_DATA_DIR:-../shared/data}
CC=${CC:-$(command -v clang-14 || command -v clang)}
CXX=${CXX:-$(command -v clang++-14 || command -v clang++)}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=gnu11 -Wall -Wextra -I. -I/usr/include/cjson $SAN"
# one static library: each target links only the objects it uses
SOURCES="base/util text/tokenizer text/wordpiece tasks/tasks tasks/squad tasks/squad_predict
         tasks/ner_features tasks/features text/unicode text/pyfmt formats/checkpoint formats/safetensors formats/torchbin
         formats/config model/model_config train/trainer_state"
LIBS="-lsentencepiece -lutf8proc -lcjson -lzip"
# targets whose input is JSON run with fuzz/dicts/json.dict
JSON_TARGETS="fuzz_korquad fuzz_model_config fuzz_safetensors fuzz_task_config fuzz_trainer_state"

die() { echo "run_fuzzers: $*" >&2; exit 2; }
[ -n "$CC" ] && [ -n "$CXX" ] || die "clang not found (apt-get install clang-14 libclang-rt-14-dev)"
mkdir -p "$OUT/obj" "$OUT/crashes" || die "cannot make $OUT"

build() {
    local objs=() s t
    for s in $SOURCES; do
        "$CC" $CFLAGS -fsanitize=fuzzer-no-link -c "host/$s.c" -o "$OUT/obj/${s#*/}.o" || return 1
        objs+=("$OUT/obj/${s#*/}.o")
    done
    "$CXX" -g -O1 -std=c++17 -I. $SAN -fsanitize=fuzzer-no-link -c host/text/spm.cc \
        -o "$OUT/obj/spm.o" || return 1
    objs+=("$OUT/obj/spm.o")
    rm -f "$OUT/libkoe.a" && ar rcs "$OUT/libkoe.a" "${objs[@]}" || return 1
    for t in $TARGETS; do
        "$CC" $CFLAGS -fsanitize=fuzzer -c "fuzz/$t.c" -o "$OUT/obj/$t.o" || return 1
        "$CXX" $SAN -fsanitize=fuzzer "$OUT/obj/$t.o" "$OUT/libkoe.a" -o "$OUT/$t" $LIBS || return 1
    done
}

# seed file DIR NAME: stdin becomes DIR/NAME
seed() { mkdir -p "$1"; cat > "$1/$2"; }

# seed_files DIR FILE...: copies of the project's own files (test fixtures, configs)
seed_files() {
    local d=$1 f
    mkdir -p "$d"
    shift
    for f in "$@"; do [ -f "$f" ] && cp "$f" "$d/$(echo "${f#*/}" | tr / _)"; done
}

seeds_tokenizer() {
    local d=$OUT/seeds/fuzz_tokenizer i=0 s
    # byte 0: tokenizer (0 cased, 1 lowercasing, 2 XLM-R), byte 1: max_len, then a NUL b
    printf '\x00\x10hello world unaffable' | seed "$d" ascii
    printf '\x01\x08Hello WORLD\x00un aff able' | seed "$d" pair_lower
    printf '\x02\x0c\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94 [CLS] x\x00y' |
        seed "$d" xlmr
    printf '\x00\x03[CLS]  a [SEP]b [MASK]\x00 [UNK] ' | seed "$d" specials
    printf '\x01\x20\xc3\x89t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xc4\xb0 1990, \xef\xbf\xbd\xc2\xad' |
        seed "$d" unicode
    # the hand-written parity cases (texts a and b)
    if command -v python3 >/dev/null && [ -f tests/fixtures/tokenizer/hand.json ]; then
        python3 - "$d" <<'EOF' || true
import json, sys
cases = json.load(open("tests/fixtures/tokenizer/hand.json"))["cases"]
for i, c in enumerate(cases[:60]):
    text = c.get("a", "").encode()
    if c.get("b") is not None:
        text += b"\0" + c["b"].encode()
    open(f"{sys.argv[1]}/hand_{i}", "wb").write(bytes([i % 3, 16 + i]) + text[:2000])
EOF
    fi
}

seeds_tsv() {
    local d=$OUT/seeds/fuzz_tsv f
    # the shapes tests/unit/test_task_readers_bad.c uses, good and bad
    printf 'id\tdocument\tlabel\n1\tgood\t1\n2\tbad text\t0\n' | seed "$d" nsmc
    printf 'q1\tq2\tlabel\r\n\xe3\x80\x80a b\tc\t1\r\nd\t\t1\re\tf\t0 \xc2\xa0\n' | seed "$d" pair
    printf 'h\n g\tf\t2012\t1\t3.25\ts1\ts2\ng\tf\t2012\t1\t1e0\tt1\tt2' | seed "$d" korsts
    printf 's1\ts2\tl\na\tb\tentailment\nc\td\tneutral\n' | seed "$d" kornli
    printf 'id\ts1\ts2\tl\n1\t\tb\t0\n2\ta\tb\t1\n' | seed "$d" paws
    printf 't\tc\tb\th\nx\ty\tnone\thate\n' | seed "$d" hate
    printf 'a  b\xe3\x80\x80c\tO PER-B\xc2\xa0TRM-I\nx\tO\n' | seed "$d" ner
    # a few real rows of each task, when the data is here
    for f in nsmc/ratings_test.txt kornli/xnli.dev.ko.tsv paws/dev_2k.tsv korsts/sts-dev.tsv \
             question-pair/dev.tsv hate-speech/val.tsv naver-ner/test.tsv; do
        [ -f "$DATA/$f" ] && head -n 6 "$DATA/$f" | seed "$d" "data_$(dirname "$f")"
    done
}

seeds_korquad() {
    local d=$OUT/seeds/fuzz_korquad
    printf '%s' '{"version": "1", "data": [{"title": "t", "paragraphs": [{"context": "hello world un aff able 1990, here", "qas": [{"id": "q1", "question": "hello?", "answers": [{"text": "world", "answer_start": 6}]}, {"id": "q2", "question": "which year", "answers": [{"text": "1990", "answer_start": 24}, {"text": "1990,", "answer_start": 24}]}]}]}]}' |
        seed "$d" small
    printf '%s' '{"data": [{"paragraphs": [{"context": "\uc548\ub155\ud558\uc138\uc694  \u202f\ud55c\uad6d\uc5b4\ub97c\n x", "qas": [{"id": "k", "question": "\ud55c\uad6d\uc5b4", "answers": [{"text": "\ud55c\uad6d\uc5b4\ub97c", "answer_start": 9}]}]}]}]}' |
        seed "$d" korean
    printf '%s' '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}' | seed "$d" bad
    if command -v python3 >/dev/null && [ -f "$DATA/korquad/KorQuAD_v1.0_dev.json" ]; then
        python3 - "$DATA/korquad/KorQuAD_v1.0_dev.json" "$d/data" <<'EOF' || true
import json, sys
art = json.load(open(sys.argv[1]))["data"][0]
p = art["paragraphs"][0]
p["qas"] = p["qas"][:2]
art["paragraphs"] = [p]
open(sys.argv[2], "w").write(json.dumps({"data": [art]}, ensure_ascii=False))
EOF
    fi
}

seeds_safetensors() {
    seed_files "$OUT/seeds/fuzz_safetensors" tests/fixtures/ckpt/*.safetensors
}

# the zip and legacy torch.save fixtures, good and bad (bert_seqcls_legacy.bin is 57 KB:
# libFuzzer keeps its first max_len bytes), and the zips' pickles and storages as the parts
# fuzz_torchbin.c zips itself
seeds_torchbin() {
    local d=$OUT/seeds/fuzz_torchbin
    seed_files "$d" tests/fixtures/ckpt/*.bin
    command -v python3 >/dev/null || return 0
    python3 - "$d" tests/fixtures/ckpt/*.bin <<'EOF' || true
import os, struct, sys, zipfile
for path in sys.argv[2:]:
    if not zipfile.is_zipfile(path):
        continue
    z = zipfile.ZipFile(path)
    pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    data = pkl[: -len("data.pkl")] + "data/"
    keys = sorted(int(n[len(data):]) for n in z.namelist() if n.startswith(data))
    parts = [z.read(pkl)] + [z.read(f"{data}{k}") for k in keys[:16]]
    out = b"".join(struct.pack("<H", len(p)) + p for p in parts)
    open(f"{sys.argv[1]}/parts_{os.path.basename(path)}", "wb").write(out)
EOF
}

seeds_model_config() {
    seed_files "$OUT/seeds/fuzz_model_config" tests/fixtures/configs/*.json \
        tests/fixtures/model/{bert,distilbert,electra,xlmr}_seqcls/config.json
}

# one config per task, and one per model for NSMC
seeds_task_config() {
    seed_files "$OUT/seeds/fuzz_task_config" configs/*/koelectra-small-v3.json configs/nsmc/*.json
}

# 7 header bytes (examples - 1, batch - 1, epochs - 1, accumulation - 1, first step, max_steps,
# seed; see fuzz_trainer_state.c), then trainer_state.json: states that continue their run
seeds_trainer_state() {
    local d=$OUT/seeds/fuzz_trainer_state
    printf '\x09\x03\x01\x00\x00\x00\x2a%s' '{"global_step": 2, "epoch": 0, "next_step": 2,
 "micro_step": 2, "train_loss_sum": 1.5, "samples_seen": 8, "seed": 42}' | seed "$d" epoch0
    printf '\x09\x03\x01\x01\x01\x00\x2a%s' '{"global_step": 3, "epoch": 1, "next_step": 3,
 "micro_step": 6, "train_loss_sum": 2.25e0, "samples_seen": 20, "seed": 42}' | seed "$d" accum
    printf '\x09\x03\x01\x00\x00\x01\x2a%s' '{"global_step": 2, "epoch": 0, "next_step": 2,
 "micro_step": 2, "train_loss_sum": -0.0, "samples_seen": 8, "seed": 42}' | seed "$d" max_steps
}

# Allocation stacks one frame deep: the system libraries (utf8proc, sentencepiece) are built
# without frame pointers, so deeper stacks through them are garbage, each one new to ASan's
# stack depot, which then grows without bound (a fifth of the tokenizer target's time, and
# 800 MB within 30 min). Rerun a crash input with ASAN_OPTIONS unset to see full stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=1}

build || die "build failed"
failed=0
for t in $TARGETS; do
    rm -rf "$OUT/seeds/$t"
    mkdir -p "$OUT/seeds/$t" "$OUT/corpus/$t"
    [ -d "fuzz/seeds/$t" ] && cp fuzz/seeds/"$t"/* "$OUT/seeds/$t/"
    declare -F "seeds_${t#fuzz_}" >/dev/null && "seeds_${t#fuzz_}"
    dict=
    [[ " $JSON_TARGETS " == *" $t "* ]] && dict=-dict=fuzz/dicts/json.dict
    echo "== $t: $SECONDS_PER_TARGET s $(date -u +%FT%TZ)"
    "$OUT/$t" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=20 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$OUT/crashes/$t-" $dict \
        ${FUZZ_FLAGS:-} "$OUT/corpus/$t" "$OUT/seeds/$t" > "$OUT/$t.log" 2>&1
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec)' \
        "$OUT/$t.log" | sed 's/^/   /'
    if [ $rc -ne 0 ]; then
        echo "!! $t failed (exit $rc): see $OUT/$t.log and $OUT/crashes/"
        failed=1
    fi
done
exit $failed
