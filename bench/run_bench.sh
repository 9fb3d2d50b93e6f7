#!/usr/bin/env bash
# Ours against PyTorch on the same machine, in one go, from the repository root:
#
#   bench/run_bench.sh [RESULTS_MD]
#
# runs bench (BENCH, default build-gpu/bench when a GPU is visible, else build/bench) once per
# (model, shape) so each peak-memory number is that model's own, then bench/torch_baseline.py
# on the same batches (the row lengths bench writes), and writes RESULTS_MD (default
# bench/results/<date>-<card>.md) with bench/results_table.py. Logs and JSON lines go to
# LOGS (default /tmp/koe-bench). Settings, from the environment:
#
#   MODELS        koelectra-small,koelectra-base,kobert,distilkobert,xlm-roberta,hanbert
#   SHAPES        nsmc,korquad            PADDING  padded,dynamic
#   STEPS=20 WARMUP=3 EVAL_STEPS=STEPS EXAMPLES=2048 (real rows tokenised per shape)
#   TORCH_MODES   fp32,bf16,compile,compile-graphs,compile-max on a GPU, fp32,bf16 on the CPU
#                 (compiling is minutes there); see bench/torch_baseline.py
#   COMPILE_MODELS koelectra-small,koelectra-base   COMPILE_SHAPES nsmc,korquad
#   COMPILE_RUNS  MODEL:SHAPE,... (instead of the two above)   EVAL_MODES (default: all)
#   TORCH_BUDGET_S  PyTorch starts no (model, shape, mode) run after this many seconds
#   PYTHON        python3
#   THREADS       CPU threads for both sides (default: all cores)
#   KOELECTRA_DATA_DIR (../shared/data), VOCAB (../shared/vocab/koelectra-base-v3-discriminator/
#   vocab.txt), PEAK_TFLOPS (else by card name), SKIP_TORCH=1
set -uo pipefail
cd "$(dirname "$0")/.."
logs="${LOGS:-/tmp/koe-bench}"
rm -rf "$logs" && mkdir -p "$logs/lengths"

if nvidia-smi -L >/dev/null 2>&1; then
    device=cuda
    card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
    bench="${BENCH:-build-gpu/bench}"
    torch_modes="${TORCH_MODES:-fp32,bf16,compile,compile-graphs,compile-max}"
    threads="${THREADS:-8}"
else
    device=cpu
    card="CPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    bench="${BENCH:-build/bench}"
    torch_modes="${TORCH_MODES:-fp32,bf16}"
    threads="${THREADS:-$(nproc)}"
fi
slug=$(echo "${card#CPU }" | tr 'A-Z' 'a-z' | grep -o -E 'h100|h200|a100' | head -n 1)
[ "$device" = cpu ] && slug=cpu
results="${1:-bench/results/$(date +%F)-${slug:-gpu}.md}"
models="${MODELS:-koelectra-small,koelectra-base,kobert,distilkobert,xlm-roberta,hanbert}"
steps="${STEPS:-20}" warmup="${WARMUP:-3}" eval_steps="${EVAL_STEPS:-${STEPS:-20}}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
common=(--steps "$steps" --warmup "$warmup" --eval_steps "$eval_steps")
[ -n "${PEAK_TFLOPS:-}" ] && common+=(--peak_tflops "$PEAK_TFLOPS")
[ -x "$bench" ] || { echo "run_bench.sh: $bench: not built (set BENCH)" >&2; exit 2; }
echo "== $card ($device, $threads threads): ours with $bench"

t0=$(date +%s)
for model in ${models//,/ }; do
    for shape in $(echo "${SHAPES:-nsmc,korquad}" | tr ',' ' '); do
        "$bench" --backend "$device" --model "$model" --shape "$shape" \
            --mode "${PADDING:-padded,dynamic}" --examples "${EXAMPLES:-2048}" \
            --device_name "$card" --lengths_dir "$logs/lengths" \
            ${VOCAB:+--vocab "$VOCAB"} "${common[@]}" \
            >"$logs/ours-$model-$shape.log" 2>&1
        rc=$?
        grep '^{' "$logs/ours-$model-$shape.log" | tee -a "$logs/ours.jsonl" | cut -c 1-160
        if [ $rc -ne 0 ]; then
            err=$(grep -m1 'error' "$logs/ours-$model-$shape.log" | tr '"' "'")
            printf '{"model": "%s", "shape": "%s", "backend": "ours", "error": "exit %s: %s"}\n' \
                "$model" "$shape" "$rc" "$err" | tee -a "$logs/ours.jsonl"
        fi
    done
done
t_ours=$(($(date +%s) - t0))

touch "$logs/torch.jsonl"
if [ -z "${SKIP_TORCH:-}" ]; then
    echo "== PyTorch ($torch_modes)"
    "${PYTHON:-python3}" bench/torch_baseline.py --device "$device" --models "$models" \
        --shapes "${SHAPES:-nsmc,korquad}" --pad_modes "${PADDING:-padded,dynamic}" \
        --modes "$torch_modes" --compile_models "${COMPILE_MODELS:-koelectra-small,koelectra-base}" \
        --compile_shapes "${COMPILE_SHAPES:-nsmc,korquad}" --compile_runs "${COMPILE_RUNS:-}" \
        --eval_modes "${EVAL_MODES:-}" --budget_s "${TORCH_BUDGET_S:-0}" --lengths_dir "$logs/lengths" \
        --threads "$threads" --device_name "$card" "${common[@]}" \
        2>"$logs/torch.err" | tee "$logs/torch.jsonl" | cut -c 1-160
    tail -n 3 "$logs/torch.err"
fi
t_all=$(($(date +%s) - t0))

commit=$(git rev-parse --short HEAD 2>/dev/null)
dirty=$(git status --porcelain 2>/dev/null | grep -q . && echo " + uncommitted changes")
torch_v=$("${PYTHON:-python3}" -c 'import torch, transformers; print(torch.__version__, "/ transformers", transformers.__version__)' 2>/dev/null)
{
    echo "- Machine: $card, backend $device, $threads threads (OMP/OpenBLAS and torch)."
    [ "$device" = cpu ] && echo "- CPU numbers on a shared machine are noisy (other jobs ran beside these); few steps."
    echo "- Code: commit $commit$dirty; PyTorch $torch_v."
    echo "- Settings: models $models; $warmup warm-up + $steps timed train steps, $eval_steps eval"
    echo "  steps per (model, shape, padding); torch modes $torch_modes."
    [[ "$torch_modes" == *compile* ]] &&
        echo "  torch.compile modes only for ${COMPILE_RUNS:-${COMPILE_MODELS:-koelectra-small,koelectra-base} at ${COMPILE_SHAPES:-nsmc,korquad}}." &&
        echo "  Eval timed for ${EVAL_MODES:-every mode}."
    [[ "$torch_modes" == *compile-* ]] && cat <<'EOF'
  compile-graphs (reduce-overhead) and compile-max (max-autotune): static shapes (dynamic
  padding bucketed to powers of two), pinned batches, non_blocking uploads; of AdamW(fused=True)
  after an eager clip and clip + AdamW(foreach) compiled together, the faster is kept (notes
  column). max(WARMUP, 5) untimed warm-up steps per shape and optimizer exclude compilation,
  autotuning and CUDA graph recording (warm-up column; recompiles in timed steps: none unless
  the notes say so).
EOF
    echo "  Both sides run the same batches (row lengths from bench's lengths files); eval uses the"
    echo "  train batch size. Time: ours ${t_ours}s, all ${t_all}s."
    echo "- Command: \`bench/run_bench.sh\` with MODELS=$models STEPS=$steps WARMUP=$warmup EVAL_STEPS=$eval_steps THREADS=$threads TORCH_MODES=$torch_modes${COMPILE_RUNS:+ COMPILE_RUNS=$COMPILE_RUNS}${EVAL_MODES:+ EVAL_MODES=$EVAL_MODES}"
    echo "- Throughput = samples (or real tokens) over the summed step times; a step runs up to"
    echo "  the loss read (synchronised) and includes the batch upload. TFLOP/s counts useful"
    echo "  work only: per row of L real tokens L x (6 x matmul params + 12 x layers x hidden x L)."
    echo "  MFU divides by the card's dense bf16 peak (H100 SXM/H200 989, H100 PCIe 756, A100 312)."
    echo "  Peak memory: ours = live backend allocations (CUDA) or peak RSS (CPU); torch ="
    echo "  max_memory_allocated (CUDA) or the process's peak RSS so far (CPU)."
} >"$logs/notes.md"
mkdir -p "$(dirname "$results")"
python3 bench/results_table.py "$logs/ours.jsonl" "$logs/torch.jsonl" \
    "Throughput: ours vs PyTorch, $card, $(date +%F)" "$logs/notes.md" >"$results" &&
    echo "== wrote $results (logs in $logs)"
