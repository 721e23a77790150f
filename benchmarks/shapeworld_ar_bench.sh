#!/usr/bin/env bash
# ScalingAR on ShapeWorld-AR: the N=8 table (paper Table 5 shape), ablations (Tables 2 and 4) and
# sensitivity to p and delta_rec. Results go to runs/shapeworld-ar/; see benchmarks/RESULTS.md.
#
#   OMP_NUM_THREADS=1 bash benchmarks/shapeworld_ar_bench.sh main        # public suite, 600 prompts
#   OMP_NUM_THREADS=1 bash benchmarks/shapeworld_ar_bench.sh ablations   # fresh prompts (draw:40:99)
#
# WEIGHTS=DIR runs another ShapeWorld-AR weights folder (e.g. a trainer's --out) instead of the shipped.
# For ablations: PROMPTS (default draw:40:99), BATCH (--batch-prompts, default 50), OUT_ABLATIONS (default
# $OUT/ablations) and VARIANTS (comma-separated names below, default all of them) choose what runs where.
set -euo pipefail
OUT=${OUT:-runs/shapeworld-ar}
BATCH=${BATCH:-50}
COMMON=(--model shapeworld-ar --batch-prompts "$BATCH" --threads 1 --resume)
if [[ -n "${WEIGHTS:-}" ]]; then COMMON+=(--model-weights "$WEIGHTS"); fi

declare -A CONFIG=(
  [active]='{"threshold_pool": "active"}'
  [win32]='{"scale_steps": false}'
  [noD]='{"use_conditional": false}'
  [noB]='{"use_block": false}'
  [noTok]='{"use_token": false}'
  [termonly]='{"schedule_guidance": false}'
  [schedonly]='{"terminate": false}'
  [p10]='{"prune_quantile": 0.1}'
  [p30]='{"prune_quantile": 0.3}'
  [d02]='{"delta_rec": 0.02}'
  [d20]='{"delta_rec": 0.2}'
  [norec]='{"delta_rec": 1e9}'
  [Donly]='{"w_i": 0.0, "w_d": 1.0}'
  [klema]='{"kl_ema": 0.2}'
  [hm73]='{"alpha_h": 0.7, "alpha_m": 0.3}'
  [guided]='{"confidence_from": "guided"}'
  [recwarmup]='{"rebound_from": "warmup"}'
  [probany]='{"probation": "any"}'
)
ALL=active,win32,noD,noB,noTok,termonly,schedonly,p10,p30,d02,d20,norec,Donly,klema,hm73,guided,recwarmup,probany

case "${1:-main}" in
  main)
    arscale bench "${COMMON[@]}" --prompts shapeworld-v1-eval --out "$OUT/main" --strategies raw --n 1
    arscale bench "${COMMON[@]}" --prompts shapeworld-v1-eval --out "$OUT/main" \
      --strategies best-of-n,importance,scaling-ar --n 8
    ;;
  ablations)
    prompts=${PROMPTS:-draw:40:99}
    out=${OUT_ABLATIONS:-$OUT/ablations}
    labels=scaling-ar
    configs=()
    IFS=, read -ra names <<< "${VARIANTS:-$ALL}"
    for name in "${names[@]}"; do
      if [[ -z "${CONFIG[$name]+x}" ]]; then echo "unknown variant $name; known: $ALL" >&2; exit 2; fi
      labels+=",scaling-ar@$name"
      configs+=(--config "scaling-ar@$name=${CONFIG[$name]}")
    done
    arscale bench "${COMMON[@]}" --scorer "" --prompts "$prompts" --out "$out" --strategies raw --n 1
    arscale bench "${COMMON[@]}" --scorer "" --prompts "$prompts" --out "$out" --n 8 --strategies "$labels" \
      "${configs[@]}"
    ;;
  *) echo "usage: $0 main|ablations" >&2; exit 2 ;;
esac
