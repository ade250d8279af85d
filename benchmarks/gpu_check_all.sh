#!/usr/bin/env bash
# Every module's GPU check in one go (for a lent GPU machine with torch preinstalled; sciml runs from the
# checkout via PYTHONPATH). Each check gets a time limit; the logs go to $OUT (or ./gpu_logs).
set -u
out="${OUT:-gpu_logs}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"
timeout 120 python3 -m pytest tests/linalg tests/core -q -x -p no:cacheprovider -m "not slow" 2>&1 | tail -5 \
    | tee "$out/pytest_linalg_cuda.txt"
for check in benchmarks/gpu_check_*.py; do
    name=$(basename "$check" .py)
    echo "== $name" | tee "$out/$name.txt"
    timeout "${GPU_CHECK_TIMEOUT:-100}" python3 "$check" 2>&1 | tail -40 | tee -a "$out/$name.txt"
done
