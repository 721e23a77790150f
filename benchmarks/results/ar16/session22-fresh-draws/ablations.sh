#!/bin/bash
# Session 22: the paper's Table 2 / 4 ablations and the p / delta_rec sensitivity on a fresh draw whose raw and
# scaling-ar runs are already in $OUT/d$1 (same --batch-prompts 60): bash ablations.sh 2201
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PROMPTS="draw:40:$1" BATCH=60 OUT_ABLATIONS="${OUT:-runs/session22}/d$1" \
  VARIANTS=noD,noB,noTok,termonly,schedonly,p10,p30,d02,d20,norec \
  bash "$here/../../../shapeworld_ar_bench.sh" ablations
