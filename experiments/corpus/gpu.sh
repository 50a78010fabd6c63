#!/usr/bin/env bash
# One session on a lent GPU machine: install the carried wheels, decode the carried training clips,
# train the x4, x2 and x3 corpus presets side by side for SECONDS, and leave their checkpoints,
# metrics and logs in OUT. Recipe and results: experiments/corpus/README.md.
#   bash experiments/corpus/gpu.sh SECONDS DATA OUT [INSTALL=1]
set -euo pipefail
SECONDS_BUDGET=$1 DATA=$2 OUT=$3 INSTALL=${4:-1}
PY=${PY:-python3}
if [ "$INSTALL" = 1 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD:${PYTHONPATH:-}  # vsrlab itself is not installed there
export PYTHONUNBUFFERED=1
$PY -c "import torch, lightning, av, hydra, kornia; print('torch', torch.__version__, 'lightning', lightning.__version__, 'cuda', torch.cuda.is_available(), 'cores', __import__('os').cpu_count())"
while IFS=, read -r split file down; do
  $PY datasets/prepare.py frames "$DATA/$file" "$DATA/videos/$split" --downscale "$down" > /dev/null 2>&1
done < "$DATA/videos.csv"
ls "$DATA/videos/train"
TRAINER=${TRAINER:-gpu}
run() {  # name scale patch workers extra...
  local name=$1 scale=$2 patch=$3 workers=$4; shift 4
  local steps
  steps=$($PY experiments/corpus/plan_steps.py --root "$DATA" --scale "$scale" --patch "$patch" --workers "$workers" \
          --seconds "$SECONDS_BUDGET" | tee "runs/$name.plan" | cut -d' ' -f1)
  echo "$name: max_steps=$steps ($(cut -d'#' -f2 "runs/$name.plan"))" | tee -a runs/plans.txt
  $PY train.py experiment=corpus_x4 trainer="$TRAINER" scale="$scale" data.root="$DATA" data.patch_size="$patch" \
      data.num_workers="$workers" data.photo_max_side=1280 trainer.max_steps="$steps" \
      trainer.max_time="00:00:00:$SECONDS_BUDGET" trainer.val_check_interval=$((steps / 3 + 1)) \
      init_from=experiments/shipped_x4/model "$@" hydra.run.dir="runs/gpu_$name" > "runs/gpu_$name.out" 2>&1
}
mkdir -p runs "$OUT"
run x4 4 256 6 &
run x2 2 128 4 init_partial=true &
run x3 3 192 4 init_partial=true &
wait || true
for name in x4 x2 x3; do
  cp "runs/gpu_$name/checkpoints/last.ckpt" "$OUT/$name.ckpt" 2>/dev/null || echo "$name: no checkpoint"
  cp runs/gpu_$name/logs/version_0/metrics.csv "$OUT/${name}_metrics.csv" 2>/dev/null || true
  grep -E "validation PSNR|Error|error" "runs/gpu_$name.out" | tail -3
done
{ cat runs/plans.txt; tail -n 30 runs/gpu_*.out; } > "$OUT/log.txt"
