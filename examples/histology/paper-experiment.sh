#!/usr/bin/env bash
# Issue G: the paper's experiment (baseline, aligned-noisy, aligned-clean) on the v-zsnr base with
# several training seeds, judged by the experiment's ResNet50 expert and by an independent judge,
# with paired bootstrap CIs of the differences (docs/RESULTS.md, section 0c).
#   examples/histology/paper-experiment.sh RUNS_DIR JUDGE.safetensors [TRAINING_SEED ...]
# TRAINING_SEED: diffusion.seed of a full `fad experiment` in RUNS_DIR/seed-<s> (default: 0 1). The
# first seed trains the expert; the others reuse it (expert.checkpoint), so the variants of every
# seed align to, and are scored by, the same expert. JUDGE: e.g. the ResNet18 of
#   npx fad --config examples/histology/config.yaml expert train --out runs/judge-resnet18 --preset resnet18-kather --lr 1e-3 --epochs 12
# Finished stages are reused (fad's step keys); an interrupted run continues where it stopped.
# Extra settings for every run: FAD_SET='--set generate.steps=20' examples/histology/paper-experiment.sh ...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
runs="${1:?usage: paper-experiment.sh RUNS_DIR JUDGE.safetensors [TRAINING_SEED ...]}"
judge="${2:?usage: paper-experiment.sh RUNS_DIR JUDGE.safetensors [TRAINING_SEED ...]}"
shift 2
seeds=("${@:-0 1}")
# shellcheck disable=SC2206
seeds=(${seeds[@]})
# shellcheck disable=SC2206
extra=(${FAD_SET:-})
fad=(node "$root/packages/cli/dist/bin.js" --config "$here/v-zsnr.yaml" "${extra[@]}")
has_predictions() { [ -f "$1" ] && node -e 'process.exit(Array.isArray(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).predictions) ? 0 : 1)' "$1"; }

expert="$runs/seed-${seeds[0]}/expert/expert.safetensors"
dirs=()
for s in "${seeds[@]}"; do
  dir="$runs/seed-$s"
  dirs+=("$dir")
  reuse=()
  if [ "$s" != "${seeds[0]}" ]; then reuse=(--set "expert.checkpoint=$expert"); fi
  echo "== training seed $s: $(date -u +%H:%M:%S)"
  start=$(date +%s)
  "${fad[@]}" --set "diffusion.seed=$s" "${reuse[@]}" experiment -r "$dir"
  echo "{\"experimentSeconds\": $(( $(date +%s) - start ))}" > "$dir/wall.json"
  for v in baseline aligned-noisy aligned-clean; do
    gen="$dir/variants/$v/generated"
    # eval.json from before fad evaluate listed per-image predictions: score again with the same expert.
    if ! has_predictions "$dir/variants/$v/eval.json" && ! has_predictions "$dir/variants/$v/eval-expert.json"; then
      "${fad[@]}" evaluate --generated "$gen" --expert "$expert" --out "$dir/variants/$v/eval-expert.json"
    fi
    if ! has_predictions "$dir/variants/$v/eval-judge.json"; then
      "${fad[@]}" evaluate --generated "$gen" --expert "$judge" --out "$dir/variants/$v/eval-judge.json"
    fi
  done
  echo "== training seed $s done: $(( $(date +%s) - start )) s"
done
node "$root/scripts/paper-ci.mjs" --json "$runs/paper-ci.json" "${dirs[@]}" | tee "$runs/paper-ci.md"
