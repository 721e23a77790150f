#!/usr/bin/env bash
# ScalingAR on ShapeWorld-AR: the N=8 table (paper Table 5 shape), ablations (Tables 2 and 4) and
# sensitivity to p and delta_rec. Results go to runs/shapeworld-ar/; see benchmarks/RESULTS.md.
#
#   OMP_NUM_THREADS=1 bash benchmarks/shapeworld_ar_bench.sh main        # public suite, 600 prompts
#   OMP_NUM_THREADS=1 bash benchmarks/shapeworld_ar_bench.sh ablations   # fresh prompts (draw:40:99)
#
# WEIGHTS=DIR runs another ShapeWorld-AR weights folder (e.g. the 16x16-token one) instead of the shipped.
set -euo pipefail
OUT=${OUT:-runs/shapeworld-ar}
COMMON=(--model shapeworld-ar --batch-prompts 50 --threads 1 --resume)
if [[ -n "${WEIGHTS:-}" ]]; then COMMON+=(--model-weights "$WEIGHTS"); fi

case "${1:-main}" in
  main)
    arscale bench "${COMMON[@]}" --prompts shapeworld-v1-eval --out "$OUT/main" --strategies raw --n 1
    arscale bench "${COMMON[@]}" --prompts shapeworld-v1-eval --out "$OUT/main" \
      --strategies best-of-n,importance,scaling-ar --n 8
    ;;
  ablations)
    arscale bench "${COMMON[@]}" --scorer "" --prompts draw:40:99 --out "$OUT/ablations" --strategies raw --n 1
    arscale bench "${COMMON[@]}" --scorer "" --prompts draw:40:99 --out "$OUT/ablations" --n 8 \
      --strategies "scaling-ar,scaling-ar@active,scaling-ar@win32,scaling-ar@noD,scaling-ar@noB,scaling-ar@noTok,scaling-ar@termonly,scaling-ar@schedonly,scaling-ar@p10,scaling-ar@p30,scaling-ar@d02,scaling-ar@d20,scaling-ar@norec,scaling-ar@Donly,scaling-ar@klema,scaling-ar@hm73,scaling-ar@guided,scaling-ar@recwarmup,scaling-ar@probany" \
      --config 'scaling-ar@active={"threshold_pool": "active"}' \
      --config 'scaling-ar@win32={"scale_steps": false}' \
      --config 'scaling-ar@noD={"use_conditional": false}' \
      --config 'scaling-ar@noB={"use_block": false}' \
      --config 'scaling-ar@noTok={"use_token": false}' \
      --config 'scaling-ar@termonly={"schedule_guidance": false}' \
      --config 'scaling-ar@schedonly={"terminate": false}' \
      --config 'scaling-ar@p10={"prune_quantile": 0.1}' \
      --config 'scaling-ar@p30={"prune_quantile": 0.3}' \
      --config 'scaling-ar@d02={"delta_rec": 0.02}' \
      --config 'scaling-ar@d20={"delta_rec": 0.2}' \
      --config 'scaling-ar@norec={"delta_rec": 1e9}' \
      --config 'scaling-ar@Donly={"w_i": 0.0, "w_d": 1.0}' \
      --config 'scaling-ar@klema={"kl_ema": 0.2}' \
      --config 'scaling-ar@hm73={"alpha_h": 0.7, "alpha_m": 0.3}' \
      --config 'scaling-ar@guided={"confidence_from": "guided"}' \
      --config 'scaling-ar@recwarmup={"rebound_from": "warmup"}' \
      --config 'scaling-ar@probany={"probation": "any"}'
    ;;
  *) echo "usage: $0 main|ablations" >&2; exit 2 ;;
esac
