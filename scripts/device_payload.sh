#!/usr/bin/env bash
# Pack what scripts/device_train_shipped.sh needs on a CUDA machine into .gpu/ (git-ignored):
# the ase and vesin-torch wheels for the machine's Python 3.12, the data, and each named run's
# checkpoint, best model and logs (the final test evaluation reads best_model.pt).
#   bash scripts/device_payload.sh RUN ...       then carry .gpu to the device machine
# The device tool carries at most 64 MiB with the repository: about six PaiNN/Clifford runs, or
# two Erwin runs.
set -eu
RUNS=${*:?names of runs in runs/shipped}
rm -rf .gpu
mkdir -p .gpu/whl
grep -qx "/.gpu/" "$(git rev-parse --git-path info/exclude)" || echo "/.gpu/" >> "$(git rev-parse --git-path info/exclude)"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/whl \
    "ase==$(.venv/bin/python -c 'import ase; print(ase.__version__)')" \
    "vesin-torch==$(.venv/bin/python -c 'from importlib.metadata import version; print(version("vesin-torch"))')"
tar czf .gpu/data.tgz data/*.extxyz
files=()
for run in $RUNS; do
    for f in best_model.pt checkpoint.pt config.yaml log.csv train.log metrics.json learning_curve.png; do
        files+=("runs/shipped/$run/$f")
    done
done
tar cf .gpu/runs.tar "${files[@]}"
du -sh .gpu/*
