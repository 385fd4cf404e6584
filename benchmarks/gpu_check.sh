#!/usr/bin/env bash
# The GPU check: the loop's CUDA path, one epoch benchmarked at the paper's crop sizes, and NEU runs.
# Usage: benchmarks/gpu_check.sh DATA_ROOT OUT_DIR   (DATA_ROOT holds neu/; a summary goes to OUT_DIR)
set -u
data=$1; out=$2; runs=$(mktemp -d)
steelnb=(python -m steelnb.cli)
neu=(--dataset neu --data-root "$data" --image-size 200 --backbone efficientnet_lite0 --weights offline
     --eval-size 224 --global-size 200 --n-global 2 --local-size 96 --n-local 6 --eval-clusters 6
     --pca-dim 64 --clusterer kmeans --batch-size 64 --lr 1e-4 --head-lr 1e-2 --device cuda)
{
  python -c "import torch, timm; print(torch.__version__, timm.__version__, torch.cuda.get_device_name())"
  echo "== smoke: ci profile on cuda"
  timeout 120 "${steelnb[@]}" train --profile ci --device cuda --out-dir "$runs/smoke" | tail -4
  echo "== bench: one NEU epoch, paper crops"
  timeout 120 "${steelnb[@]}" bench "${neu[@]}" --n-clusters 30 --extractor-every 10 --head centroid
  for spec in "C 30 10 1e-4" "D 30 1 1e-4" "E 6 2 1e-4" "G 30 2 3e-4"; do
    set -- $spec
    echo "== run $1: head=centroid K=$2 extractor_every=$3 lr=$4 epochs=12"
    timeout 100 "${steelnb[@]}" train "${neu[@]}" --head centroid --n-clusters "$2" --extractor-every "$3" \
      --lr "$4" --epochs 12 --out-dir "$runs/$1" > "$runs/$1.log" 2>&1
    echo "exit $?"; cat "$runs/$1/history.csv"; python -c "import json,sys; print(json.load(open(sys.argv[1]))['metrics'])" "$runs/$1/metrics.json"
    tail -3 "$runs/$1.log"
  done
} 2>&1 | tee "$out/gpu_check.txt"
