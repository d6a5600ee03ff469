#!/usr/bin/env bash
# ResNet-20 on CIFAR-10 with the paper's schedule, or the degradation figure, in one timed GPU run.
#
#   Here (once):  tinyresnet data pack ../shared/data/cifar10/train .gpudata/cifar10-train.npz
#                 (.gpudata/ git-ignored; 51 MB: one file, since 50,000 small files travel slowly)
#   On the GPU:   bash benchmarks/gpu_cifar10.sh paper .gpudata/cifar10-train.npz [--test-data DIR]
#                 bash benchmarks/gpu_cifar10.sh degradation .gpudata/cifar10-train.npz
#
# DATA is a packed folder (tinyresnet data pack) or an image folder (<class>/*.jpg).
#   paper        cifar_resnet20, 45k/5k split, CIFAR recipe (4-pixel padded crop, flip), batch 128,
#                SGD 0.1 momentum 0.9 weight decay 1e-4, lr /10 at 32k and 48k iterations, stop at
#                64k (He et al. 2015, Section 4.2; Table 6 gives 91.25% test accuracy).  Prints the
#                held-out accuracy (5,000 images) and, with --test-data, the test accuracy.
#   degradation  plain-20, plain-56, ResNet-20, ResNet-56 with the short schedule (--epochs E each,
#                default 3): training and held-out error by iteration, as the paper's Fig. 6, in
#                OUT/degradation.png.
# Options: --device cuda|cpu (cpu: a smoke run of the script itself), --budget SECONDS (whole run,
# default 540: one 9-minute device call), --out DIR (default gpu_cifar10_out, or $OUT/gpu_cifar10
# on the device machine), --epochs E (degradation).
# The script keeps its own clock: each training run is stopped (SIGINT: a checkpoint is saved
# between batches) when the budget runs out, and the script says at which iteration it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)

die() { echo "gpu_cifar10.sh: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: gpu_cifar10.sh {paper|degradation} DATA [--test-data DIR] [--device cuda|cpu] [--budget S] [--out DIR] [--epochs E]"
mode=$1 data=$2; shift 2
test_data="" device=cuda budget=540 epochs=3 out=${OUT:+$OUT/gpu_cifar10}
out=${out:-gpu_cifar10_out}
while [ $# -gt 0 ]; do
    case $1 in
        --test-data) test_data=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --budget) budget=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        *) die "unknown option '$1'" ;;
    esac
done
case $mode in paper|degradation) ;; *) die "mode must be 'paper' or 'degradation', got '$mode'" ;; esac
[ -e "$data" ] || die "no data at '$data' (make it with: tinyresnet data pack FOLDER OUT.npz)"
tiny() { python3 -m tinyresnet "$@"; }
left() { echo $(( budget - ($(date +%s) - start) )); }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TINYRESNET_CACHE="$work/cache"

python3 - <<'PY'
import platform, numpy, tinyresnet
from tinyresnet import backend
line = f"python {platform.python_version()}, numpy {numpy.__version__}, tinyresnet {tinyresnet.__version__}"
if backend.cupy_available():
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    line += f", cupy {cupy.__version__}, GPU {props['name'].decode()}"
print(line)
PY

# The image folder: extracted from the packed file, bytes unchanged.
if [ -f "$data" ]; then
    tiny data extract "$data" "$work/train" >/dev/null
    folder=$work/train
else
    folder=$data
fi
tiny data prepare "$folder" --no-progress   # decode once; every run below reads the cache
echo "data ready after $(( $(date +%s) - start )) s"

# train NAME MODEL SECONDS ARGS...: one run, stopped by SIGINT when SECONDS run out.
train() {
    local name=$1 model=$2 seconds=$3; shift 3
    [ "$seconds" -gt 10 ] || { echo "$name: no time left for it"; return 0; }
    local rc=0
    timeout -s INT -k 30 "$seconds" python3 -m tinyresnet train --dataset imagefolder \
        --data "$folder" --model "$model" --recipe cifar --device "$device" --seed 0 \
        --out "$out/$name" --no-progress "$@" || rc=$?
    case $rc in
        0) echo "$name: finished" ;;
        124|130) echo "$name: stopped by the time budget" ;;
        *) echo "$name: training failed (exit status $rc)"; return $rc ;;
    esac
    python3 - "$out/$name" <<'PY'
import json, sys
from pathlib import Path
from tinyresnet.train import read_checkpoint
run = Path(sys.argv[1])
lines = [json.loads(l) for l in (run / "history.jsonl").read_text().splitlines() if l.strip()]
ckpt = read_checkpoint(run / "last.npz")
steps = sum(r.get("time_steps", 0) for r in lines)
last = lines[-1] if lines else {}
print(f"  {run.name}: {len(lines)} epochs done, checkpoint at epoch {ckpt.epoch} step {ckpt.step} "
      f"(about {steps} iterations of whole epochs); last held-out top-1 "
      f"{last.get('val_acc1', float('nan')):.2f}%, "
      f"{last.get('time_train_s', float('nan')) / max(last.get('time_steps', 1), 1) * 1e3:.1f} ms/step")
PY
}

if [ "$mode" = paper ]; then
    train paper cifar_resnet20 $(( $(left) - 60 )) --schedule paper
    echo "held-out (5,000 of the 50,000 training images):"
    tiny eval "$out/paper/last.npz" --data "$folder" --device "$device" --no-progress
    if [ -n "$test_data" ]; then
        # train/ and test/ side by side: eval then takes the whole test folder as its test split
        mkdir -p "$work/with_test"
        ln -s "$(cd "$folder" && pwd)" "$work/with_test/train"
        ln -s "$(cd "$test_data" && pwd)" "$work/with_test/test"
        echo "test ($test_data):"
        tiny eval "$out/paper/last.npz" --data "$work/with_test" --device "$device" --no-progress
    fi
else
    names=(plain20 plain56 resnet20 resnet56)
    models=(plain_cifar_resnet20 plain_cifar_resnet56 cifar_resnet20 cifar_resnet56)
    weights=(1 3 1 3)   # the 56-layer nets take about three times as long a step
    for i in 0 1 2 3; do
        total=0; for w in "${weights[@]:i}"; do total=$(( total + w )); done
        share=$(( ($(left) - 30) * weights[i] / total ))
        train "${names[i]}" "${models[i]}" "$share" --schedule short --epochs "$epochs"
    done
    python3 benchmarks/degradation_figure.py "$out" --out "$out/degradation.png"
fi
echo "whole run: $(( $(date +%s) - start )) s of a $budget s budget"
