#!/bin/bash
# Submits the generate array and a merge job that starts when every task of the array succeeded.
# Usage: [FAD_ARRAY=0-7] [FAD_MODEL=... FAD_SHARDS=... FAD_OUT=...] ./submit-slurm.sh [extra sbatch options for both jobs]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
array=$(sbatch --parsable --export=ALL --array="${FAD_ARRAY:-0-7}" "$@" "$here/slurm-generate.sh")
array=${array%%;*}
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" "$@" "$here/slurm-merge.sh")
echo "generate array: job $array; merge: job $merge (runs after every task of $array succeeded)"
