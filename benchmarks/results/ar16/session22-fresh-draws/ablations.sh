#!/bin/bash
# Session 22: the paper's Table 2 / 4 ablations and the p / delta_rec sensitivity on a fresh draw whose raw and
# scaling-ar runs are already in $OUT/d$1 (same --batch-prompts 60): bash ablations.sh 2201
set -euo pipefail
s=$1
arscale bench --model shapeworld-ar --scorer "" --prompts draw:40:$s --threads 1 --batch-prompts 60 --n 8 --quiet --resume --out "${OUT:-runs/session22}/d$s" \
  --strategies "scaling-ar@noD,scaling-ar@noB,scaling-ar@noTok,scaling-ar@termonly,scaling-ar@schedonly,scaling-ar@p10,scaling-ar@p30,scaling-ar@d02,scaling-ar@d20,scaling-ar@norec" \
  --config 'scaling-ar@noD={"use_conditional": false}' \
  --config 'scaling-ar@noB={"use_block": false}' \
  --config 'scaling-ar@noTok={"use_token": false}' \
  --config 'scaling-ar@termonly={"schedule_guidance": false}' \
  --config 'scaling-ar@schedonly={"terminate": false}' \
  --config 'scaling-ar@p10={"prune_quantile": 0.1}' \
  --config 'scaling-ar@p30={"prune_quantile": 0.3}' \
  --config 'scaling-ar@d02={"delta_rec": 0.02}' \
  --config 'scaling-ar@d20={"delta_rec": 0.2}' \
  --config 'scaling-ar@norec={"delta_rec": 1e9}'
