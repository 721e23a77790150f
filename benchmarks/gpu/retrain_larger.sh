#!/usr/bin/env bash
# Larger ShapeWorld generators for a session that is lent a GPU (the shipped CPU-trained models sample better
# the more they learn; for issue 5's ScalingAR target, size is no longer the plan: a ShapeWorld-AR with 3.6x fewer
# transformer parameters gained as much over its raw sampling, RESULTS.md Session 21). Both fit the 30 MB
# shipped-weights budget together with the other shipped files (tested in tests/training/test_gpu_recipes.py):
# ShapeWorld-VAR 224 wide x 6 blocks (6.3 M parameters, 12 MB in fp16; shipped: 160 x 4) and ShapeWorld-AR
# 192 x 6 (3.3 M, 6.3 MB; shipped: 128 x 4),
# on the shipped, frozen tokenizers. Each training stage is one device command of MINUTES (default 9) that
# ends with its schedule finished (--fit-time-limit, below); then evaluate:
#
#   bash benchmarks/gpu/retrain_larger.sh var     # VAR_STEPS at most, fitted to MINUTES
#   bash benchmarks/gpu/retrain_larger.sh ar      # AR_STEPS at most, fitted to MINUTES
#   bash benchmarks/gpu/retrain_larger.sh eval    # raw sampling on fresh draws, shipped vs larger (LIMIT=K: first K)
#
# One device call can do both for a model: MINUTES=7 bash benchmarks/gpu/retrain_larger.sh var && bash ... eval.
# VAR_BATCH, AR_BATCH (256, 128) and WORKERS change the batch and data processes (tests run it tiny, on CPU);
# THREADS sets every stage's --threads (default 4 to train, 8 to evaluate; the tests' 2-core machine: 1).
#
# States and weights go to $ROOT (default runs/gpu); finished weights folders are copied to $OUT when set
# (the device tool's return folder). The last COOLDOWN steps anneal the learning rate to zero.
# --fit-time-limit: after 50 timed steps the trainer lowers the step count (and the cooldown in proportion)
# to what MINUTES allow, so one device call ends with a finished, cooled-down model even on a slower card.
# The stages stay resumable from $ROOT, but a fresh device machine starts bare, and the VAR state (weights and
# optimizer, about 75 MB) is over the 64 MiB the device tool carries.
# WORKERS processes (default 10) make the scenes ahead of the trainer: one core makes about 3200 scenes/s,
# so 8000 steps at batch 256 would wait over ten minutes for data alone (benchmarks/scene_stream.py).
# Before shipping: re-check sampling defaults on held-out draws, then raise the per-model size limits
# in tests/next_scale/test_shipped_var_model.py and tests/next_token/test_shipped_ar_model.py.
set -euo pipefail
# the device image has torch, numpy, safetensors, tqdm, pillow and matplotlib but no install of arscale
if command -v arscale >/dev/null; then ARSCALE=(arscale); else
  export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}; ARSCALE=(python3 -m arscale.cli); fi
ROOT=${ROOT:-runs/gpu}
MINUTES=${MINUTES:-9}
VAR_STEPS=${VAR_STEPS:-8000}
AR_STEPS=${AR_STEPS:-8000}
COOLDOWN=${COOLDOWN:-1500}
WORKERS=${WORKERS:-10}
VAR_BATCH=${VAR_BATCH:-256}
AR_BATCH=${AR_BATCH:-128}
TRAIN_THREADS=${THREADS:-4}
EVAL_THREADS=${THREADS:-8}
HERE=$(dirname "$0")
SHIPPED=src/arscale/weights
mkdir -p "$ROOT"

export_to_out() {  # weights folder -> $OUT/<name>, complete with the tokenizer files
  local dir=$1 tok=$2
  cp "$tok"/tokenizer.safetensors "$tok"/tokenizer_config.json "$dir"/
  if [[ -n "${OUT:-}" ]]; then mkdir -p "$OUT/$(basename "$dir")" && cp -r "$dir"/. "$OUT/$(basename "$dir")/"; fi
}

case "${1:-}" in
  var)
    "${ARSCALE[@]}" train shapeworld-var --config "$HERE/shapeworld-var-large.json" --tokenizer "$SHIPPED/shapeworld-var" \
      --state-dir "$ROOT/var-state" --out "$ROOT/shapeworld-var-large" --steps "$VAR_STEPS" --cooldown "$COOLDOWN" \
      --batch-size "$VAR_BATCH" --lr 1e-3 --self-correction 0.3 --threads "$TRAIN_THREADS" --data-workers "$WORKERS" --time-limit "$MINUTES" \
      --fit-time-limit --eval-every 2000
    export_to_out "$ROOT/shapeworld-var-large" "$SHIPPED/shapeworld-var"
    ;;
  ar)
    "${ARSCALE[@]}" train shapeworld-ar --config "$HERE/shapeworld-ar-large.json" --tokenizer "$SHIPPED/shapeworld-ar" \
      --state-dir "$ROOT/ar-state" --out "$ROOT/shapeworld-ar-large" --steps "$AR_STEPS" --cooldown "$COOLDOWN" \
      --batch-size "$AR_BATCH" --lr 1e-3 --threads "$TRAIN_THREADS" --data-workers "$WORKERS" --time-limit "$MINUTES" --fit-time-limit \
      --fresh-fraction 1 --tune-decoder-every 0  # every sample fresh (no CPU replay economy); tokenizer frozen
    export_to_out "$ROOT/shapeworld-ar-large" "$SHIPPED/shapeworld-ar"
    ;;
  eval)
    for model in shapeworld-var shapeworld-ar; do
      for weights in "" "$ROOT/$model-large"; do
        [[ -z "$weights" || -f "$weights/model.safetensors" ]] || continue
        "${ARSCALE[@]}" bench --model "$model" ${weights:+--model-weights "$weights"} --strategies raw --n 1 \
          --prompts draw:100:9100 --scorer "" --threads "$EVAL_THREADS" --batch-prompts 200 \
          ${LIMIT:+--limit "$LIMIT"} --out "$ROOT/eval/$model${weights:+-large}"
        if [[ -n "${OUT:-}" ]]; then mkdir -p "$OUT/eval" && cp "$ROOT/eval/$model${weights:+-large}/table.md" \
          "$OUT/eval/$model${weights:+-large}.md"; fi
      done
    done
    ;;
  *) echo "usage: $0 var|ar|eval" >&2; exit 2 ;;
esac
