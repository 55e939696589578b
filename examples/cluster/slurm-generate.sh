#!/bin/bash
# fad generate over N shards as a SLURM job array: task i of --array=0-(N-1) samples shard i
# (fad reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT; --array=1-N
# works too). Submit with submit-slurm.sh, which runs slurm-merge.sh when every task succeeded.
#SBATCH --job-name=fad-generate
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --output=fad-generate-%A_%a.log
set -euo pipefail
: "${FAD:=fad}"                                          # the fad command (e.g. "node /shared/fad/packages/cli/dist/bin.js")
: "${FAD_MODEL:=/shared/models/baseline/model.safetensors}"
: "${FAD_SHARDS:=/shared/run/shards}"                    # the folder shared by all tasks
: "${FAD_GENERATE_ARGS:=--per-class 1000 --seeds 0,1,2}"
: "${FAD_BACKEND:=native}"
if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "slurm-generate.sh: not a SLURM array task (SLURM_ARRAY_TASK_ID is not set); submit it with sbatch (see README.md)" >&2
  exit 2
fi
echo "task ${SLURM_ARRAY_TASK_ID} of array ${SLURM_ARRAY_TASK_MIN:-0}..${SLURM_ARRAY_TASK_MAX:-?} (${SLURM_ARRAY_TASK_COUNT:-?} tasks) on $(hostname)"
# shellcheck disable=SC2086 # FAD and FAD_GENERATE_ARGS are word lists
exec $FAD --backend "$FAD_BACKEND" generate --model "$FAD_MODEL" $FAD_GENERATE_ARGS --out "$FAD_SHARDS"
