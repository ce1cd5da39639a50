#!/usr/bin/env bash
# The GPU checks as one command, for a machine with an NVIDIA GPU whose python3 holds torch (cbopt itself needs
# no install: it runs from src/). From the repository root:
#
#   bash scripts/device_check.sh            # writes gpu.txt, tests.txt, bench.txt and gpu.md into $OUT
#
# 1. the test files that hold CUDA tests (they skip without CUDA, so they must run where it is), on 8 workers
#    where pytest-xdist is installed;
# 2. benchmarks/gpu.py with compiled CBO rows: step time against its floor, numpy beside CUDA, N d 1e4 ... 1e9.
# Each part has its own time limit, so that the whole fits a 10-minute command.
set -uo pipefail
out=${OUT:-/tmp/cbopt-device-check}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
workers=()
python3 -c "import xdist" 2>/dev/null && workers=(-n 8)
timeout 270 python3 -m pytest -q -rs -p no:cacheprovider "${workers[@]}" tests/test_backend.py tests/test_scale.py \
    tests/test_contract.py tests/test_front_door.py tests/test_nn.py 2>&1 | tail -60 | tee "$out/tests.txt"
timeout 300 python3 benchmarks/gpu.py --compile --md "$out/gpu.md" 2>&1 | tee "$out/bench.txt"
