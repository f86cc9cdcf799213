#!/usr/bin/env bash
# The GPU suite in one call: benchmarks/gpu_suite.sh [--dry-run] OUT_DIR
#
# On the GPU host (Python 3.12, torch 2.11, transformers 5.17, no network, no pydantic or ultralytics) it
# installs the wheels carried in .whl/ into a private folder, runs visionbench from this source tree
# (PYTHONPATH=src, nothing installed from a registry) and writes everything under OUT_DIR:
#   env.txt                  nvidia-smi, python and library versions
#   bench-<dtype>/           the 8 suite models at batch 1 in float32, bfloat16, float16 (run.json, report.md, ...)
#   depthpro-batches/        DepthPro in bfloat16 at batch 1, 2, 4, 8, 16 (largest batch, utilisation per batch)
#   fast/                    --preset fast (each piece alone and combined, with its accuracy cost)
#   gpu-tests.txt            the GPU-marked tests with VISIONBENCH_DEVICE=cuda
#   dissect/                 one dissection of DepthPro on the GPU
#   loader.txt               benchmarks/depth_loader.py: `depth`'s loader against the model alone
#   suite.log                every step, its time and exit status; utilisation.txt: each model against both peaks
# Each step runs under `timeout` with what is left of SUITE_BUDGET_S (default 450 s, under 8 minutes);
# a step that no longer fits is skipped and logged, and what finished stays on disk (each bench writes
# run.json after every model).
#
# The wheels, prepared once on a machine with pip access (the exact command; .whl/ is git-ignored, 4 MiB):
#   python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl pydantic==2.14.4 pydantic-core==2.50.5 ultralytics==8.4.190 ultralytics-thop typing-inspection \
#     annotated-types
# The device call (at most 8 files come back, 2 folders deep: pack the folder):
#   run(carry=[".whl"], command="benchmarks/gpu_suite.sh /tmp/suite; tar czf $OUT/suite.tgz -C /tmp suite;
#       cp /tmp/suite/suite.log /tmp/suite/utilisation.txt $OUT/", timeout_s=540)
#
# --dry-run: the same steps on the CPU with tiny models (depthpro-tiny, depth-anything-v2-tiny, yolo11n), in
# float32 only (bf16/fp16 are emulated on an AVX2 CPU), and the shared venv's python, so the first GPU call does not fail on a missing package or path.
set -u
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT_DIR="${1:?usage: benchmarks/gpu_suite.sh [--dry-run] OUT_DIR}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
LOG="$OUT_DIR/suite.log"
BUDGET="${SUITE_BUDGET_S:-450}"
START=$SECONDS
export HF_HUB_OFFLINE=1 YOLO_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg

log() { echo "[$((SECONDS - START)) s] $*" | tee -a "$LOG"; }

# step NAME MIN_S CMD...: runs CMD under the time left (minus a reserve for the summary), or skips it
step() {
    local name=$1 min=$2
    shift 2
    local left=$((BUDGET - (SECONDS - START) - 15))
    if [ "$left" -lt "$min" ]; then
        log "SKIP $name: ${left} s left, it needs at least ${min} s"
        return 0
    fi
    log "START $name (at most ${left} s)"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=10 "$left" "$@" >>"$OUT_DIR/$name.out" 2>&1
    local rc=$?
    log "END $name rc=$rc in $((SECONDS - t0)) s"
    return 0
}

if [ "$DRY" = 1 ]; then
    PY="${VB_PYTHON:-$ROOT/../../main/.venv/bin/python}"
    [ -x "$PY" ] || PY="/work/main/.venv/bin/python"
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
    DEVICE=cpu
    SUITE=(depthpro-tiny depth-anything-v2-tiny yolo11n)
    DEPTHPRO=depthpro-tiny
    SMALL=(depth-anything-v2-tiny yolo11n)
    SIZE=()  # each tiny model's own size (depthpro-tiny needs 256 px)
    BATCHES=1,2
    POLICY=(--runs 2 --budget 0 --no-e2e --threads 1 --timeout 100)  # compile (about 30 s) skipped by the rule
    DTYPES=(float32)  # bf16/fp16 are emulated on an AVX2-only CPU (minutes even for tiny models)
    LOWDT=float32
    LOADER=(--images 8 --batch-size 2 --rounds 2 --model depthpro-tiny)
else
    PY=python3
    DEVICE=cuda
    SUITE=(depthpro depth-anything-v2-small depth-anything-v2-base depth-anything-v2-large yolo11n yolo11n-seg
        yolo11n-pose mobile-sam)
    DEPTHPRO=depthpro
    SMALL=(depthpro depth-anything-v2-small yolo11n)
    SIZE=()
    BATCHES=1,2,4,8,16
    POLICY=(--runs 5 --budget 2 --max-loop-time 10 --timeout 120)
    DTYPES=(float32 bfloat16 float16)
    LOWDT=bfloat16
    LOADER=(--images 256 --batch-size 8 --model depth-anything-v2-small)
fi

log "gpu_suite: dry_run=$DRY device=$DEVICE budget=${BUDGET} s out=$OUT_DIR"
# 1. the carried wheels, into a private folder (the host's own packages stay as they are)
SITE="$(mktemp -d /tmp/vb-site.XXXXXX)"
PIPX=()  # the rehearsal's venv is Python 3.11: install the host's cp312 wheels as for 3.12 (proves the set)
[ "$DRY" = 1 ] && PIPX=(--python-version 3.12 --only-binary=:all: --implementation cp --platform manylinux2014_x86_64)
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${PIPX[@]}" \
        .whl/*.whl \
        >>"$LOG" 2>&1 || { log "FAIL wheels: pip install from .whl/ failed"; exit 1; }
    log "wheels: $(ls .whl | tr '\n' ' ')"
else
    log "no .whl/ folder: using the interpreter's own packages"
fi
if [ "$DRY" = 1 ]; then
    export PYTHONPATH="$ROOT/src"  # the venv already has these packages; the install above proves the wheels
else
    export PYTHONPATH="$ROOT/src:$SITE"
fi
VB=("$PY" -m visionbench)

# 2. the environment, and an import check of everything the steps need (fails fast, with the reason)
{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
        --format=csv
    "$PY" -c "import sys, torch, transformers, pydantic, ultralytics, visionbench as vb
print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__,
      'pydantic', pydantic.VERSION, 'ultralytics', ultralytics.__version__, 'visionbench', vb.__file__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
} >"$OUT_DIR/env.txt" 2>&1 || { log "FAIL imports: see env.txt"; cat "$OUT_DIR/env.txt"; exit 1; }
log "env: $(tail -2 "$OUT_DIR/env.txt" | tr '\n' ' ')"

# 3. the suite's models at batch 1 in each dtype (utilisation against both peaks is in every result)
for dt in "${DTYPES[@]}"; do
    step "bench-$dt" 30 "${VB[@]}" bench "${SUITE[@]}" --device "$DEVICE" --dtype "$dt" --weights random \
        "${SIZE[@]}" "${POLICY[@]}" --out "$OUT_DIR/bench-$dt"
done
# 4. DepthPro in bfloat16 at growing batches (an out-of-memory is recorded as its limit)
step depthpro-batches 30 "${VB[@]}" bench "$DEPTHPRO" --device "$DEVICE" --dtype "$LOWDT" --weights random \
    --batch-sizes "$BATCHES" "${SIZE[@]}" "${POLICY[@]}" --out "$OUT_DIR/depthpro-batches"
# 5. the fast preset: each piece alone, then combined, with speed-up and accuracy cost against float32 eager
step fast 40 "${VB[@]}" bench "${SMALL[@]}" --device "$DEVICE" --weights random --preset fast \
    "${SIZE[@]}" "${POLICY[@]}" --out "$OUT_DIR/fast"
# 6. the GPU-marked tests (on the CPU rehearsal: collected only, they need CUDA)
if [ "$DRY" = 1 ]; then
    step gpu-tests 10 "$PY" -m pytest -q -p no:xdist -p no:cacheprovider -m gpu --collect-only tests
else
    step gpu-tests 30 env VISIONBENCH_DEVICE=cuda "$PY" -m pytest -q -x -p no:cacheprovider -m gpu tests
fi
# 7. one dissection of DepthPro on the device
step dissect 30 "${VB[@]}" dissect "$DEPTHPRO" --device "$DEVICE" --weights random "${SIZE[@]}" --stats-only \
    --out "$OUT_DIR/dissect"
# 8. `depth`'s loader against the model alone, the model on the suite's device
LOADER+=(--device "$DEVICE")
step loader 20 "$PY" benchmarks/depth_loader.py "${LOADER[@]}"

# 9. utilisation of every result against both peaks, one line each (also in each run's report.md)
"$PY" - "$OUT_DIR" >"$OUT_DIR/utilisation.txt" 2>&1 <<'EOF'
import sys
from pathlib import Path
from visionbench.results import load_run
for run_json in sorted(Path(sys.argv[1]).glob("*/*/run.json")):
    run = load_run(run_json)
    for m in run.models:
        for b in m.batches:
            u, d = b.utilisation, b.utilisation_datasheet
            med = b.model_latency.median_ms if b.model_latency else float("nan")
            print(f"{run_json.parent.parent.name:18} {m.name:26} {m.dtype:9} bs {b.batch_size:2} {b.status:4} "
                  f"{med:9.2f} ms  measured-peak {'-' if u is None else f'{u:.1%}':>6}  "
                  f"datasheet {'-' if d is None else f'{d:.1%}':>6}")
        for v in m.variants:
            print(f"  variant {v.name:13} {v.status:14} x{v.speedup or 0:.2f} {v.accuracy} {v.reason or ''}")
EOF
log "utilisation: $(wc -l <"$OUT_DIR/utilisation.txt") lines"
log "done in $((SECONDS - START)) s"
rm -rf "$SITE"
