#!/usr/bin/env bash
# Reduced precision on a lent GPU, as one short device command (about 4 minutes on an H100):
#
#   bash benchmarks/gpu/precision_check.sh            # the table to $OUT/precision.md (else runs/gpu/)
#
# benchmarks/precision.py at the released sizes with random weights, on cuda: VAR-d16 and VAR-d30, LlamaGen
# c2i-B and -XL, each in float32, bfloat16 and float16 (time per image, weights, KV cache, peak GPU memory,
# first-step logit drift); RESULTS.md Session 28 has the CPU table it completes. BATCH (default 8) images per
# timed batch; MODELS overrides the list; DEVICE=cpu runs it here (slow: a check of the script only).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${OUT:-runs/gpu}
mkdir -p "$DEST"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # the device image has no install of arscale
read -r -a MODEL_LIST <<< "${MODELS:-var-d16 var-d30 llamagen-c2i-b llamagen-c2i-xl}"
# written beside and renamed when whole: a run that fails (no CUDA) leaves no empty precision.md behind
python benchmarks/precision.py --device "${DEVICE:-cuda}" --batch "${BATCH:-8}" --models "${MODEL_LIST[@]}" \
  | tee "$DEST/precision.md.part" || { rm -f "$DEST/precision.md.part"; exit 1; }
mv "$DEST/precision.md.part" "$DEST/precision.md"
