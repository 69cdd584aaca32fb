#!/usr/bin/env bash
# GPU check on a borrowed CUDA machine that has torch and transformers but cannot reach the internet.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      # writes OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.log
#
# Packages memo needs that such a machine may lack travel as wheels in .whl/ (see docs/evaluation.md,
# "GPU check"): they are installed into /tmp/site, nothing is fetched. It then runs the timm test
# (skipped on machines without timm) and benchmarks/gpu_check.py under a 9-minute limit.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-.}}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
# memo itself, editable (its stages map onto memo.* through pyproject's package-dir), built offline
python3 -c "import memo.features" 2>/dev/null || python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$out/gpu_check.log"
python3 -m pytest -q -o addopts= -p no:cacheprovider tests/test_features.py -k timm 2>&1 | tail -3 | tee -a "$out/gpu_check.log"
timeout 540 python3 benchmarks/gpu_check.py --out "$out/gpu_check.json" 2>&1 | tee -a "$out/gpu_check.log"
