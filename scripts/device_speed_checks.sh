#!/usr/bin/env bash
# The GPU checks of the speed and engine issues, in one run on a lent CUDA machine (the device
# tool), writing their tables to $OUT. Prepare the payload here first:
#   bash scripts/device_speed_checks.sh --prepare     (wheels and the Ac-Ala3 structure in .gpu/)
# then on the device, with .gpu carried:
#   bash scripts/device_speed_checks.sh
# 1. benchmarks/md_step_speed.py: plain calls and CUDA-graph replay (agreement in float64, MD
#    ms/step, ns/day, NVE drift), and a 3,000-atom periodic water box; 2. `phicalc md` of
#    Ac-Ala3-NHMe, NVE at 0.5 fs in its default float64 (CUDA graphs on); 3. with BATCH=1,
#    benchmarks/batch_inference.py on CUDA. (torch.compile is refused on CUDA: check it first
#    with benchmarks/compile_check.py.)
set -u
if [[ ${1:-} == --prepare ]]; then
    set -e
    rm -rf .gpu && mkdir -p .gpu/whl
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx "/.gpu/" "$exclude" 2>/dev/null || echo "/.gpu/" >> "$exclude"
    version() { .venv/bin/python -c "from importlib.metadata import version; print(version('$1'))"; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d .gpu/whl "ase==$(version ase)" "vesin-torch==$(version vesin-torch)" \
        "torch-pme==$(version torch-pme)"
    .venv/bin/python -c "from ase.io import write; from phicalc.data.structures import \
structure_from_string as s; write('.gpu/ac_ala3.xyz', s('ac-ala3'))"
    du -sh .gpu/*
    exit 0
fi
OUT=${OUT:-device_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 260 python3 benchmarks/md_step_speed.py --device cuda --molecule .gpu/ac_ala3.xyz \
    --steps 1000 --plain-steps 300 --box-waters 1000 --box-steps 30 \
    --json "$OUT/md_step_speed_cuda.json" 2>&1 | grep -v -i warn | tee "$OUT/md_step_speed_cuda.txt"
timeout 150 python3 -c "from phicalc.cli.main import main; main()" md --model phi-painn-organic \
    --structure .gpu/ac_ala3.xyz --ensemble nve --temperature 300 --timestep 0.5 --steps 6000 \
    --device cuda --out /tmp/md_ac_ala3 --no-progress --no-plots 2>&1 | tail -3
cp /tmp/md_ac_ala3/summary.json "$OUT/phicalc_md_summary.json" 2>/dev/null
if [[ ${BATCH:-0} == 1 ]]; then
    timeout 120 python3 benchmarks/batch_inference.py --device cuda --molecule .gpu/ac_ala3.xyz \
        --n 64 --repeats 3 2>&1 | tee "$OUT/batch_inference_cuda.txt"
fi
