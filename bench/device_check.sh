#!/usr/bin/env bash
# The GPU check, run ON the GPU machine from the repository root:
#
#   bench/device_check.sh OUTDIR [--quick]
#
# It expects a prebuilt build-gpu/ (KOE_BUILD overrides) and local/devlibs/ from
# bench/prepare_device.sh, carried along with the tree. It prints the GPU, driver and CUDA
# versions; runs every GPU test and every unit test binary (logs in OUTDIR/<name>.log, one
# PASS/FAIL/SKIP line each); runs compute-sanitizer memcheck and racecheck on the kernel
# test (small shapes); runs the bench programs when they exist (the attention microbenchmark
# against PyTorch SDPA writes OUTDIR/attention.jsonl, attention_torch.jsonl and attention.md,
# the table for bench/results/<date>-attention-<card>.md); prints a summary table, written to
# OUTDIR/summary.txt, and every log packed in OUTDIR/logs.tar.gz (the device tool returns
# only a few files: point OUTDIR outside $OUT and copy those two into it).
# If the prebuilt binaries cannot start CUDA (a driver older than the CUDA 13.0 runtime they
# carry), it says so and tries once to rebuild the .cu files with this machine's nvcc and
# relink the GPU tests from the carried objects.
#
# Time: the whole check stops at KOE_DEVICE_BUDGET_S (default 480 s, the device's per-call limit
# less margin): each check's limit is cut to what is left and a check that finds under 10 s is
# listed as CUT. Order is by what matters: GPU tests, then the throughput table (ours vs the
# strongest PyTorch, issue 12), then the rest. The throughput step alone needs ~5-6 min (an
# estimate: not yet timed), most of it PyTorch compiling and autotuning, so to fit it measures
# only koelectra-base and -small,
# padded, NSMC 32x128 and KorQuAD 8x512 (ours: both models at both shapes; PyTorch: bf16 eager,
# compile-graphs and compile-max for base and small at 32x128 and base at 8x512, eval timed
# for bf16 only). Left out to fit: the other four models, dynamic padding, fp32 eager (slower
# than bf16 on every H200 run) and the default torch.compile (compile-graphs' Inductor kernels
# without its CUDA graphs). MODELS, SHAPES, PADDING, STEPS, WARMUP,
# EVAL_STEPS, TORCH_MODES, COMPILE_RUNS and EVAL_MODES override these (bench/run_bench.sh).
# --quick runs only the GPU tests and the throughput table (fits in 8 min); without it the
# sanitizers, CPU unit tests, attention checks, run_seq_cls and ncu follow as far as the
# budget allows (a second call with SKIP_THROUGHPUT=1 runs them all). The throughput table
# (OUTDIR/bench-results.md; logs in OUTDIR/bench) is printed last.
set -uo pipefail
out="${1:?usage: bench/device_check.sh OUTDIR [--quick]}"
quick=""
[ "${2:-}" = --quick ] && quick=1
mkdir -p "$out"
build="${KOE_BUILD:-build-gpu}"
export PATH="$PATH:/usr/local/cuda/bin:/usr/local/cuda/compute-sanitizer"
t_start=$(date +%s)
budget="${KOE_DEVICE_BUDGET_S:-480}"
table=()

say() { echo; echo "== $*"; }
left() { echo $((t_start + budget - $(date +%s))); }

# run NAME LIMIT_S CMD...: log to OUTDIR/NAME.log, one status line, a table row; the limit is
# cut to the budget left, and without 10 s left the check is CUT
run() {
    local name=$1 limit=$2
    shift 2
    local t0 rc status dt
    if [ "$(left)" -lt 10 ]; then
        printf '%-8s %-36s  the %ss budget is spent\n' CUT "$name" "$budget"
        table+=("$(printf '%-36s %-10s %5ss' "$name" CUT 0)")
        return 0
    fi
    [ "$limit" -gt "$(left)" ] && limit=$(left)
    t0=$(date +%s)
    timeout "$limit" env LD_LIBRARY_PATH="$ldpath" KOELECTRA_DATA_DIR="$data_dir" \
        KOE_BUILD_DIR="$build" OMP_NUM_THREADS=8 "$@" >"$out/$name.log" 2>&1
    rc=$?
    case $rc in
    0) status=PASS ;;
    77) status=SKIP ;;
    124) status=TIMEOUT ;;
    *) status="FAIL($rc)" ;;
    esac
    dt=$(($(date +%s) - t0))
    printf '%-8s %-36s %4ss  %s\n' "$status" "$name" "$dt" "$(tail -n 1 "$out/$name.log")"
    table+=("$(printf '%-36s %-10s %5ss' "$name" "$status" "$dt")")
    return $rc
}

say "machine"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi 2>&1 | tee "$out/nvidia-smi.log" | head -n 12
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
else
    echo "nvidia-smi: not found"
fi
driver_cuda=$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | awk '{print $3}')
echo "driver supports CUDA: ${driver_cuda:-unknown}; prebuilt binaries need CUDA 13.0"
command -v nvcc >/dev/null && nvcc --version | tail -n 2
command -v compute-sanitizer >/dev/null || echo "compute-sanitizer: not found"

say "libraries"
libdir=/tmp/koe-devlibs
rm -rf "$libdir"
mkdir -p "$libdir"
cp local/devlibs/* "$libdir"/ 2>/dev/null || echo "local/devlibs: missing (run bench/prepare_device.sh here first)"
gunzip -f "$libdir"/*.gz 2>/dev/null
ldpath="$libdir"
# cuBLASLt 13 comes from this machine: its toolkit (the binaries' RUNPATH is the build
# machine's /usr/local/cuda/lib), else any copy found, e.g. the wheel beside PyTorch
if LD_LIBRARY_PATH="$ldpath" ldd "$build/tests/test_cuda_ops" 2>&1 | grep -q 'libcublasLt.*not found'; then
    lt=$(find /usr/local/cuda/lib64 /usr/local/cuda/targets /usr/local /opt /usr/lib \
        -name 'libcublasLt.so.13' 2>/dev/null | head -n 1)
    [ -n "$lt" ] && ldpath="$ldpath:$(dirname "$lt")"
fi
echo "LD_LIBRARY_PATH for our programs: $ldpath"
data_dir="$PWD/local/devdata"
[ -d "$data_dir" ] || data_dir="$PWD/../shared/data"
missing=$(LD_LIBRARY_PATH="$ldpath" ldd "$build/tests/test_cuda_ops" 2>&1 | grep 'not found')
[ -n "$missing" ] && echo "MISSING LIBRARIES:" && echo "$missing"

names_in() { find "$1" -maxdepth 1 -name 'test_*.c' -printf '%f\n' | sed 's/\.c$//' | sort; }
gpu_tests=$(names_in tests/gpu)
unit_tests=$(names_in tests/unit)
bindir="$build/tests"

# The prebuilt binaries carry the CUDA 13.0 runtime; an older driver refuses it.
rebuild() {
    say "rebuilding the CUDA backend with this machine's nvcc"
    command -v nvcc >/dev/null || { echo "no nvcc here"; return 1; }
    local dir=/tmp/koe-rebuild cudalib
    rm -rf "$dir" && mkdir -p "$dir/obj" "$dir/tests"
    cudalib=$(dirname "$(dirname "$(command -v nvcc)")")/lib64
    for f in kernels/cuda/*.cu; do
        nvcc -std=c++17 -I. -O3 --use_fast_math -lineinfo -arch=sm_90 -c "$f" \
            -o "$dir/obj/$(basename "$f" .cu).o" || return 1
    done
    ar rcs "$dir/libkoe_cuda.a" "$dir"/obj/*.o
    for t in $gpu_tests attention_dump; do
        local obj="$build/tests/CMakeFiles/$t.dir/gpu/$t.c.o"
        [ "$t" = attention_dump ] && obj="$build/tests/CMakeFiles/$t.dir/tools/$t.c.o"
        g++ -o "$dir/tests/$t" "$obj" "$build/libkoe.a" \
            "$dir/libkoe_cuda.a" "$libdir"/*.so* -L"$cudalib" -lcublasLt \
            "$cudalib/libcudart_static.a" -fopenmp -lrt -lpthread -ldl -lm || return 1
    done
    bindir="$dir/tests"
    ldpath="$ldpath:$cudalib"
}

say "GPU tests"
if [ -z "$driver_cuda" ]; then
    echo "NO NVIDIA DRIVER VISIBLE (nvidia-smi gave no CUDA version): the GPU tests will skip"
elif [ "${driver_cuda%%.*}" -lt 13 ]; then
    echo "THE DRIVER IS TOO OLD: it supports CUDA $driver_cuda, the prebuilt binaries need 13.0"
    rebuild || echo "rebuild failed: the GPU tests below will skip or fail"
fi
for t in $gpu_tests; do
    run "$t" 90 "$bindir/$t"
    if [ "$t" = test_cuda_ops ] && [ -n "$driver_cuda" ] && [ "$bindir" = "$build/tests" ] &&
        grep -q 'driver version is insufficient' "$out/$t.log"; then
        echo "CUDA COULD NOT START: the driver is older than the CUDA 13.0 runtime of the build"
        rebuild && run "$t-rebuilt" 120 "$bindir/$t"
    fi
done

say "throughput: ours vs the strongest PyTorch on this card (bench/run_bench.sh)"
if [ -x "$build/bench" ] && [ -z "${SKIP_THROUGHPUT:-}" ]; then
    # PyTorch starts no run in the last 150 s: a compile-max run takes 1-2 min
    torch_budget=$(($(left) - 150))
    runs="koelectra-base:nsmc,koelectra-small:nsmc,koelectra-base:korquad"
    run run_bench 600 env BENCH="$build/bench" LOGS="$out/bench" \
        VOCAB="$PWD/local/devdata/vocab.txt" MODELS="${MODELS:-koelectra-base,koelectra-small}" \
        SHAPES="${SHAPES:-nsmc,korquad}" PADDING="${PADDING:-padded}" STEPS="${STEPS:-20}" \
        WARMUP="${WARMUP:-3}" EVAL_STEPS="${EVAL_STEPS:-10}" \
        TORCH_MODES="${TORCH_MODES:-bf16,compile-graphs,compile-max}" \
        COMPILE_RUNS="${COMPILE_RUNS:-$runs}" EVAL_MODES="${EVAL_MODES:-bf16}" \
        TORCH_BUDGET_S=$((torch_budget > 30 ? torch_budget : 30)) \
        bench/run_bench.sh "$out/bench-results.md"
    if [ ! -s "$out/bench-results.md" ] && [ -s "$out/bench/ours.jsonl" ]; then
        touch "$out/bench/torch.jsonl" "$out/bench/notes.md"  # cut short: the lines so far
        python3 bench/results_table.py "$out/bench/ours.jsonl" "$out/bench/torch.jsonl" \
            "Throughput, PARTIAL (run_bench.sh was stopped)" "$out/bench/notes.md" \
            >"$out/bench-results.md"
    fi
fi

# the checks after the throughput table, skipped by --quick
other_checks() {
    # the CUDA op against PyTorch's float64 attention (121 cases, one process each)
    run test_attention_sdpa 240 python3 tests/gpu/test_attention_sdpa.py --dump "$bindir/attention_dump"

    say "unit tests (CPU)"
    for t in $unit_tests; do
        [ -x "$build/tests/$t" ] && run "$t" 60 "$build/tests/$t"
    done

    say "compute-sanitizer on test_cuda_ops --small"
    if command -v compute-sanitizer >/dev/null; then
        run memcheck 60 compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$bindir/test_cuda_ops" --small
        run racecheck 60 compute-sanitizer --tool racecheck --error-exitcode 9 \
            "$bindir/test_cuda_ops" --small
        run memcheck-flash 60 compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$bindir/test_flash_attention" --small
        run racecheck-flash 90 compute-sanitizer --tool racecheck --error-exitcode 9 \
            "$bindir/test_flash_attention" --small
    fi

    say "attention microbenchmark: ours (flash, packed, simple) vs PyTorch SDPA"
    if [ -x "$build/attention_bench" ]; then
        run attention_bench 120 "$build/attention_bench" --steps 20 --warmup 3 --lengths-dir bench/lengths
        grep '^{' "$out/attention_bench.log" >"$out/attention.jsonl"
        # PyTorch times the same lengths: from our lines, or from the cases alone if ours failed
        torch_in="$out/attention.jsonl"
        if [ ! -s "$torch_in" ]; then
            torch_in="$out/attention_cases.jsonl"
            LD_LIBRARY_PATH="$ldpath" timeout 20 "$build/attention_bench" --lengths-only \
                --lengths-dir bench/lengths >"$torch_in"
        fi
        run attention_torch 180 python3 bench/attention_torch.py "$torch_in" --steps 20 --warmup 3
        grep '^{' "$out/attention_torch.log" >"$out/attention_torch.jsonl"
        card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
        if [ -s "$out/attention.jsonl" ] || [ -s "$out/attention_torch.jsonl" ]; then
            run attention_table 30 sh -c 'python3 bench/attention_table.py "$1" "$2" --card "$3" >"$4"' \
                sh "$out/attention.jsonl" "$out/attention_torch.jsonl" "$card" "$out/attention.md"
            cat "$out/attention.md"
        fi
    fi

    say "run_seq_cls on a tiny NSMC split (GPU, random tiny ELECTRA)"
    if [ -x "$build/run_seq_cls" ] && [ -d local/devdata/nsmc ]; then
        run run_seq_cls 120 "$build/run_seq_cls" --task nsmc --config_file koelectra-small-v3.json \
            --data_dir local/devdata --vocab_file local/devdata/vocab.txt --model_config local/devdata/tiny.json \
            --max_steps 30 --logging_steps 10 --save_steps 10 --train_batch_size 16 --eval_batch_size 32 \
            --ckpt_dir /tmp/koe-ckpt
        tail -n 8 "$out/run_seq_cls.log"
        run run_seq_cls_unpadded 120 "$build/run_seq_cls" --task nsmc --config_file koelectra-small-v3.json \
            --data_dir local/devdata --vocab_file local/devdata/vocab.txt --model_config local/devdata/tiny.json \
            --max_steps 30 --logging_steps 10 --save_steps 10 --train_batch_size 16 --eval_batch_size 32 \
            --ckpt_dir /tmp/koe-ckpt-unpadded --unpadded
        tail -n 8 "$out/run_seq_cls_unpadded.log"
    fi

    say "per-kernel GPU time, koelectra-base 32x128 (ncu)"
    if command -v ncu >/dev/null && [ -x "$build/bench" ]; then
        run ncu_base 60 ncu --metrics gpu__time_duration.sum --print-summary per-kernel \
            "$build/bench" --backend cuda --model koelectra-base --steps 1 --warmup 1
    fi
}

if [ -n "$quick" ]; then
    say "--quick: the sanitizers, attention checks, unit tests, run_seq_cls and ncu are skipped"
else
    other_checks
fi

say "summary ($(($(date +%s) - t_start))s in all)"
{
    printf '%-36s %-10s %6s\n' check status time
    printf '%s\n' "${table[@]}"
} | tee "$out/summary.txt"
tar czf /tmp/koe-device-logs.tar.gz -C "$out" --exclude logs.tar.gz . && mv /tmp/koe-device-logs.tar.gz "$out/logs.tar.gz"
[ -s "$out/bench-results.md" ] && say "throughput table ($out/bench-results.md)" &&
    cat "$out/bench-results.md"
grep -q -E 'FAIL|TIMEOUT' "$out/summary.txt" && exit 1
exit 0
