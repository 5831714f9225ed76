#!/usr/bin/env bash
# Continue shipped training runs on one CUDA machine, all at once, inside a wall-time budget,
# after checking every shipped model on CUDA against the CPU (benchmarks/cuda_inference.py).
#
#   bash scripts/device_train_shipped.sh BUDGET_S OUT_DIR RUN[:EPOCHS] ...
#
# RUN names runs/shipped/RUN (recipe recipes/shipped/RUN.yaml). RUN:EPOCHS resumes to exactly
# EPOCHS (a run cut off by the budget keeps its last checkpoint: resume it elsewhere); a bare RUN
# resumes with `--epochs UPPER --time-limit T`, so the trainer cuts its epochs to what fits and
# the cosine schedule still ends in time (UPPER: 100 for organic runs, 60 otherwise).
# CHECK=0 skips the CUDA check; DEVICE=cpu rehearses the script on a machine without a GPU.
#
# Expects .gpu/ from scripts/device_payload.sh (wheels, data, the runs' checkpoints). Results come
# back as OUT_DIR/runs_<k>.tgz (the runs' folders, packed up to 15 MB an archive) and
# OUT_DIR/report.tgz (logs, CUDA check).
set -u
BUDGET=${1:?budget in seconds}
OUT_DIR=${2:?output folder}
shift 2
DEVICE=${DEVICE:-cuda}
start=$SECONDS
mkdir -p "$OUT_DIR" logs
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .gpu/whl/*.whl || exit 3
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
tar xzf .gpu/data.tgz && tar xf .gpu/runs.tar || exit 3
nvidia-smi > logs/nvidia-smi.txt 2>&1
python3 -c "import torch, ase, vesin_torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ase', ase.__version__)" || exit 3

if [ "${CHECK:-1}" != 0 ]; then
    echo "== CUDA against CPU ($((SECONDS - start)) s)"
    timeout 90 python3 benchmarks/cuda_inference.py --molecule data/ac_ala3_500K_test.extxyz \
        --speed-models phi-painn-organic phi-erwin-ac-ala3 phi-clifford-ac-ala3 --box-waters 1000 \
        --threads 16 --repeats 5 --json logs/cuda_inference.json 2>&1 | tee logs/cuda_inference.txt
fi

limit=$((BUDGET - (SECONDS - start) - 30)) # 30 s for the test evaluations and the archives
echo "== training, $limit s ($((SECONDS - start)) s)"
runs=()
for spec in "$@"; do
    run=${spec%%:*}
    runs+=("$run")
    if [ "$spec" != "$run" ]; then
        schedule=(--epochs "${spec#*:}")
    else
        case $run in organic*) upper=100 ;; *) upper=60 ;; esac
        schedule=(--epochs "$upper" --time-limit "$limit")
    fi
    timeout $((limit + 25)) python3 -m phicalc.cli.main train "recipes/shipped/$run.yaml" --resume \
        "${schedule[@]}" --device "$DEVICE" --no-progress > "logs/$run.out" 2>&1 &
done
wait
echo "== done ($((SECONDS - start)) s)"
for run in "${runs[@]}"; do
    echo "-- $run"
    grep -E "resumed|time limit|epoch [0-9]+/|test metrics|Error|error" "runs/shipped/$run/train.log" | tail -4 | cut -c 1-400
    tail -2 "logs/$run.out" | cut -c 1-300
done
# The device tool returns at most 8 files of 16 MiB: fill archives of runs up to 15 MB each.
python3 - "$OUT_DIR" "${runs[@]}" <<'PACK'
import pathlib, sys, tarfile
out, runs = sys.argv[1], sys.argv[2:]
groups, size = [[]], 0
for run in runs:
    files = sorted(p for p in pathlib.Path("runs/shipped", run).iterdir() if p.is_file())
    run_size = sum(p.stat().st_size for p in files)
    if groups[-1] and size + run_size > 15e6:
        groups.append([])
        size = 0
    groups[-1] += files
    size += run_size
for number, files in enumerate(groups):
    with tarfile.open(f"{out}/runs_{number}.tgz", "w:gz") as archive:
        for path in files:
            archive.add(path)
PACK
tar czf "$OUT_DIR/report.tgz" logs
ls -la "$OUT_DIR"
echo "== total $((SECONDS - start)) s"
