#!/usr/bin/env bash
# Issue G's lever screen on Kather 2016: one baseline-scale training per lever (same data, split,
# seed, U-Net and step budget as config.yaml), sampled with 5 seeds x 10 images x 8 classes and
# judged by the independent ResNet18 judge.
#   examples/histology/levers.sh RUNS_DIR JUDGE.safetensors [LEVER ...]
# Levers (default: all but v): base eps-offset v-zsnr v-zsnr-minsnr v-zsnr-both (class also through
# the time embedding) v (v-prediction alone) v-zsnr-bf16 (v-zsnr trained in bf16 mixed precision) v-zsnr-full (v-zsnr at the full-size U-Net, 80k image-steps) latent (U-Net on the 16x16x4 latents of the histology64
# autoencoder, trained once into RUNS_DIR/autoencoder with latent.yaml's settings and judged by its
# fidelity check) latent-v-zsnr (latent with v-prediction and zero terminal SNR); any LEVER-noclip
# samples LEVER's model (trained once) with generate.clipSample=false
# Each lever writes RUNS_DIR/<lever>/{train,generated,eval-judge.json,diagnose.json}; finished
# steps are reused (fad's step keys), an interrupted training resumes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
runs="${1:?usage: levers.sh RUNS_DIR JUDGE.safetensors [LEVER ...]}"
judge="${2:?usage: levers.sh RUNS_DIR JUDGE.safetensors [LEVER ...]}"
shift 2
levers=("${@:-base eps-offset v-zsnr v-zsnr-minsnr v-zsnr-both}")
# shellcheck disable=SC2206
levers=(${levers[@]})
fad=(node "$root/packages/cli/dist/bin.js" --config "$here/config.yaml")
data="${FAD_DATA:-$root/../shared/data/kather2016-gray128}"
screen=(--set 'generate.seeds=[0,1,2,3,4]')

for lever in "${levers[@]}"; do
  # LEVER-noclip: LEVER's training (reused when finished), sampled without clipping x_0.
  noclip=()
  if [[ "$lever" == *-noclip ]]; then noclip=(--set generate.clipSample=false); fi
  case "${lever%-noclip}" in
    base) train=(); gen=() ;;
    eps-offset) train=(--set diffusion.noiseOffset=0.1); gen=() ;;
    v-zsnr) train=(--set diffusion.scheduler.predictionType=v_prediction --set diffusion.scheduler.rescaleBetasZeroSnr=true); gen=(--set generate.timestepSpacing=trailing) ;;
    v-zsnr-minsnr) train=(--set diffusion.scheduler.predictionType=v_prediction --set diffusion.scheduler.rescaleBetasZeroSnr=true --set diffusion.snrGamma=5); gen=(--set generate.timestepSpacing=trailing) ;;
    v-zsnr-both) train=(--set diffusion.scheduler.predictionType=v_prediction --set diffusion.scheduler.rescaleBetasZeroSnr=true --set 'diffusion.unet.overrides={blockChannels: [16, 32, 64], classConditioning: both}'); gen=(--set generate.timestepSpacing=trailing) ;;
    v) train=(--set diffusion.scheduler.predictionType=v_prediction); gen=() ;;
    v-zsnr-bf16)
      # bf16's quality check: the v-zsnr lever trained with the native backend's bf16 mixed precision
      # (run.precision; needs @fad/tfjs-native), sampled in fp32 like every other lever.
      train=(--set diffusion.scheduler.predictionType=v_prediction --set diffusion.scheduler.rescaleBetasZeroSnr=true --set run.precision=bf16)
      gen=(--set generate.timestepSpacing=trailing --set run.precision=fp32) ;;
    v-zsnr-full)
      # "Spend the speed": v-zsnr at the full-size 6.2M U-Net ([32, 64, 128]) for 5000 steps of batch 16
      # (80k image-steps, the paper's 20 epochs x 4000 images), EMA 0.999, and a judged validation grid
      # every 500 steps (8 images per class, DDIM 25 without clipping) for the quality-versus-time curve.
      train=(--set diffusion.scheduler.predictionType=v_prediction --set diffusion.scheduler.rescaleBetasZeroSnr=true
        --set 'diffusion.unet.overrides={blockChannels: [32, 64, 128]}' --set diffusion.steps=5000 --set diffusion.emaDecay=0.999
        --set diffusion.validation.every=500 --set diffusion.validation.imagesPerClass=8 --set "diffusion.validation.judge=$judge")
      gen=(--set generate.timestepSpacing=trailing) ;;
    latent|latent-v-zsnr)
      ae="$runs/autoencoder"
      if [ ! -f "$ae/autoencoder.safetensors" ]; then
        if [ -f "$ae/autoencoder-checkpoint.safetensors" ]; then aer=(--resume); else aer=(); fi
        echo "== autoencoder: $(date -u +%H:%M:%S)"
        s0=$(date +%s)
        node "$root/packages/cli/dist/bin.js" --config "$here/latent.yaml" autoencoder train -o "$ae" --judge "$judge" "${aer[@]}"
        echo "{\"trainSeconds\": $(( $(date +%s) - s0 ))}" > "$ae/times.json"
      fi
      train=(--set diffusion.space=latent --set "diffusion.autoencoder=$ae/autoencoder.safetensors" --set 'diffusion.unet.overrides={blockChannels: [64, 128, 256]}')
      gen=()
      if [ "$lever" = latent-v-zsnr ]; then
        train+=(--set diffusion.scheduler.predictionType=v_prediction --set diffusion.scheduler.rescaleBetasZeroSnr=true)
        gen=(--set generate.timestepSpacing=trailing)
      fi ;;
    *) echo "unknown lever $lever" >&2; exit 2 ;;
  esac
  dir="$runs/$lever"
  traindir="$runs/${lever%-noclip}/train"
  gen+=("${noclip[@]}")
  mkdir -p "$dir"
  echo "== $lever: $(date -u +%H:%M:%S)"
  start=$(date +%s)
  if [ -f "$traindir/checkpoint.safetensors" ]; then resume=(--resume); else resume=(); fi
  "${fad[@]}" "${train[@]}" train --out "$traindir" "${resume[@]}"
  t1=$(date +%s)
  "${fad[@]}" "${train[@]}" "${gen[@]}" "${screen[@]}" generate --model "$traindir" --out "$dir/generated" --force
  t2=$(date +%s)
  "${fad[@]}" evaluate --generated "$dir/generated" --expert "$judge" --out "$dir/eval-judge.json"
  node "$root/scripts/diagnose-mean.mjs" "$traindir/model.safetensors" "$data" --out "$dir/diagnose.json" > "$dir/diagnose.md" || echo "diagnose failed (see $dir/diagnose.md)"
  echo "{\"trainSeconds\": $((t1 - start)), \"generateSeconds\": $((t2 - t1))}" > "$dir/times.json"
  echo "== $lever done: train $((t1 - start)) s, generate $((t2 - t1)) s"
done
