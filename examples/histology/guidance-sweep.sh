#!/usr/bin/env bash
# Expert-guided sampling on the real data (docs/RESULTS.md, "Guidance at sampling time"):
# the baseline U-Net of `fad experiment` (runs/histology) sampled without expert guidance, with
# classifier guidance and with each uncertainty energy at two scales. The guide is a ResNet18
# trained apart from the experiment's ResNet50, which judges every set (generation accuracy, SSIM
# diversity, Frechet distance and KID on its features), so the judge is not the guide.
#
#   bash examples/histology/guidance-sweep.sh [RUN_DIR] [GUIDE]
#
# RUN_DIR  the experiment's run folder (default runs/histology)
# GUIDE    the guiding expert (default runs/judge-resnet18/expert.safetensors), made with
#            fad --config examples/histology/config.yaml expert train --out runs/judge-resnet18 \
#              --preset resnet18-kather --lr 1e-3 --epochs 12
#          A noise-aware guide (add --noise-aware) should guide better at high noise.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${1:-runs/histology}
GUIDE=${2:-runs/judge-resnet18/expert.safetensors}
OUT=$RUN/guidance
CFG=examples/histology/config.yaml
FAD="node packages/cli/dist/bin.js --config $CFG"
CLASSES=tumor,stroma,complex,lympho,debris,mucosa,adipose   # "empty" is left out, as in the paper
COMMON="--model $RUN/variants/baseline/train --classes $CLASSES -n 4 --seeds 100,101 --sampler ddim --sampling-steps 25 --guidance-scale 2"
mkdir -p "$OUT"
run() { # name, extra generate flags
  local name=$1; shift
  if [ ! -f "$OUT/$name/manifest.json" ]; then $FAD generate $COMMON --out "$OUT/$name" --force "$@"; fi
  [ -f "$OUT/$name/eval.json" ] || $FAD evaluate --generated "$OUT/$name" --expert "$RUN/expert/expert.safetensors" --out "$OUT/$name/eval.json" >/dev/null
}
run unguided
for kind in classifier entropy margin least-confidence; do
  for s in ${SCALES:-10 50}; do
    run "$kind-s$s" --guidance "$kind" --guidance-expert "$GUIDE" --guidance-expert-scale "$s"
  done
done
echo "guidance sweep: results in $OUT/*/eval.json"
