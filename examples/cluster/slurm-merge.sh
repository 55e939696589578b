#!/bin/bash
# fad merge after the array of slurm-generate.sh (submit-slurm.sh makes it depend on the array).
#SBATCH --job-name=fad-merge
#SBATCH --cpus-per-task=1
#SBATCH --output=fad-merge-%j.log
set -euo pipefail
: "${FAD:=fad}"
: "${FAD_SHARDS:=/shared/run/shards}"
: "${FAD_OUT:=/shared/run/generated}"
# shellcheck disable=SC2086
exec $FAD merge "$FAD_SHARDS" --out "$FAD_OUT"
