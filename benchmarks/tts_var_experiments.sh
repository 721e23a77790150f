#!/usr/bin/env bash
# The paper's experiments on ShapeWorld-VAR, one command each (issue 4, item 6).
# Prompts are fresh grammar draws (draw:PER_TAG:SEED), never the public 600 (no tuning on it).
# Usage: benchmarks/tts_var_experiments.sh [main|ablations|consistency|reward|reward-train|all] [PER_TAG]
# Every bench command is resumable: re-run with the same arguments (it passes --resume).
set -euo pipefail
what=${1:-all}
per_tag=${2:-200}          # 200 per tag = 1200 prompt draws for the headline table
abl_per_tag=${ABL_PER_TAG:-50}
out=${OUT:-out/tts-var-experiments}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# Run one bench over JOBS parallel shards (one thread each), then merge them into $1.
# Shard 0 shows its progress bar (the shards are the same size); the others stay quiet.
sharded() {
  local dest=$1; shift
  local jobs=${JOBS:-2} pids=() dirs=() quiet
  for ((i = 0; i < jobs; i++)); do
    quiet=(); ((i > 0)) && quiet=(--quiet)
    arscale bench "$@" --out "$dest.shard$i" --num-shards "$jobs" --shard-index "$i" --resume "${quiet[@]}" &
    pids+=($!); dirs+=("$dest.shard$i")
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  arscale bench merge "${dirs[@]}" --out "$dest"
}

main() {  # Table 6/7 shape, Fig. 3 (score vs N) and Fig. 8 (score vs compute)
  local common=(--model shapeworld-var --prompts "draw:${per_tag}:1" --seed 0 --batch-prompts 50)
  # N = rows that start (the official code's reading): Best-of-N and TTS-VAR at every N
  sharded "$out/main" "${common[@]}" --strategies best-of-n,tts-var --n 1,2,4,8
  # the other baseline and our decode-free clustering variant at N=8
  sharded "$out/main-n8" "${common[@]}" --strategies importance,tts-var@latent --n 8 \
    --config 'tts-var@latent={"features": "latent"}'
  # the paper's text (N rows survive to the end) at N=2, for its "TTS-VAR N=2 vs Best-of-N N=8" claim
  sharded "$out/main-final" "${common[@]}" --strategies tts-var@final --n 2 \
    --config 'tts-var@final={"n_counts": "final"}'
}

ablations() {  # N=8 (the official run); default: cluster_at [1,3], resample_at [4,5], batch 8,8,6,6,4,2,1 (7 scales)
  sharded "$out/ablations" --model shapeworld-var --n 8 --prompts "draw:${abl_per_tag}:2" --seed 0 --batch-prompts 50 \
    --strategies best-of-n,tts-var,tts-var@resample-only,tts-var@cluster-only,tts-var@cluster-0-2,tts-var@cluster-2-3,tts-var@resample-5,tts-var@resample-3-5,tts-var@diff,tts-var@max,tts-var@sum,tts-var@lam0.1,tts-var@lam1,tts-var@lam5,tts-var@pca-joint,tts-var@pool,tts-var@latent \
    --config 'tts-var@resample-only={"cluster_at": [], "resample_at": [4, 5], "batch": [8, 8, 8, 8, 8, 2, 1]}' \
    --config 'tts-var@cluster-only={"cluster_at": [1, 3], "resample_at": [], "batch": [8, 8, 6, 6, 4, 4, 4]}' \
    --config 'tts-var@cluster-0-2={"cluster_at": [0, 2], "resample_at": [4, 5]}' \
    --config 'tts-var@cluster-2-3={"cluster_at": [2, 3], "resample_at": [4, 5]}' \
    --config 'tts-var@resample-5={"cluster_at": [1, 3], "resample_at": [5], "batch": [8, 8, 6, 6, 4, 4, 1]}' \
    --config 'tts-var@resample-3-5={"cluster_at": [1, 2], "resample_at": [3, 5], "batch": [8, 8, 6, 4, 2, 2, 1]}' \
    --config 'tts-var@diff={"potential": "diff"}' --config 'tts-var@max={"potential": "max"}' \
    --config 'tts-var@sum={"potential": "sum"}' \
    --config 'tts-var@lam0.1={"lam": 0.1}' --config 'tts-var@lam1={"lam": 1.0}' --config 'tts-var@lam5={"lam": 5.0}' \
    --config 'tts-var@pca-joint={"reduction": "pca-joint"}' --config 'tts-var@pool={"reduction": "pool"}' \
    --config 'tts-var@latent={"features": "latent"}'
}

consistency() {  # Fig. 5b
  python benchmarks/reward_consistency.py --per-tag 20 --n 8 --json "$out/consistency.json" --plot "$out/consistency.png"
}

reward() {  # the reward's pairwise accuracy on hard negatives (clean renders and tokenizer reconstructions)
  python benchmarks/reward_accuracy.py --per-tag 200 --tokenizer src/arscale/weights/shapeworld-var \
    --json "$out/reward_accuracy.json"
}

reward_train() {  # the shipped reward: the base run, then the partial-decode fine-tune (RESULTS.md § Session 4)
  arscale train shapeworld-reward --steps 3000 --batch-size 32 --state-dir "$out/reward-base" --out "$out/reward-base-weights"
  arscale train shapeworld-reward --init "$out/reward-base-weights" --partial-tokenizer src/arscale/weights/shapeworld-var \
    --steps 1000 --lr 3e-4 --batch-size 32 --threads 2 --state-dir "$out/reward-partial" --out "$out/reward-weights"
}

mkdir -p "$out"
case "$what" in
  main) main ;; ablations) ablations ;; consistency) consistency ;; reward) reward ;; reward-train) reward_train ;;
  all) reward; consistency; main; ablations ;;
  *) echo "usage: $0 [main|ablations|consistency|reward|reward-train|all] [PER_TAG]" >&2; exit 2 ;;
esac
