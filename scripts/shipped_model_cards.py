"""Model cards of the Erwin and Clifford Ac-Ala3 models: python scripts/ac_ala3_model_cards.py erwin clifford

Run from the repository root after training (recipes/shipped/ac_ala3_*), `phicalc eval --json
reports/NAME_test.json` and the NVE runs in md_runs/closing/NAME_nve.
"""

import subprocess
import sys
from pathlib import Path

DATA = (
    "Trained MD22-style on GFN2-xTB data: the MD22 budget of 6,000 frames (95 % train / 5 % "
    "validation) from two independent 500 K trajectories, with the data, split, losses and "
    "optimiser of painn-ac-ala3 / phi-painn-ac-ala3."
)
ARCH = {
    "erwin": (
        "Erwin",
        "a PaiNN-style local encoder (2 blocks, F = 64, 5 Å cutoff) feeding the "
        "invariant Erwin ball-tree trunk (balls of 32 atoms, so this molecule is split into "
        "two balls by a principal-axis median cut and pooled into two nodes at level 1)",
    ),
    "clifford": (
        "CliffordNet",
        "Cl(3,0) multivector features [n_atoms, 24, 8], 3 message blocks "
        "with steerable kernels applied by geometric product, 5 Å cutoff",
    ),
}
COMMON_LIMITS = [
    "Trained on one molecule: Ac-Ala3-NHMe conformations visited by GFN2-xTB Langevin MD at "
    "500 K. Other molecules, conformer basins and temperatures far from 500 K are extrapolation.",
    "The reference is GFN2-xTB, not DFT: errors are relative to xTB.",
    "Per-element reference energies are a minimum-norm least-squares fit on one composition "
    "(only their sum is meaningful).",
]
EXTRA_LIMITS = {
    "erwin": [
        "10 epochs: 9 under the recipe's cosine schedule, then one more at ≤ 2.4e-5 learning "
        "rate (`phicalc train ... --resume --epochs 10`); the PaiNN models had 5. Validation loss "
        "was still falling. Test force MAE is 0.050–0.051 eV/Å, just above the 0.05 eV/Å target.",
        "The ball tree changes where atoms cross a split plane, and the energy jumps there. "
        "`phicalc eval` and a plain `PhiCalculator` build a fresh tree per structure; `phicalc md` "
        "keeps one tree per run (`--partition-skin` to rebuild), so MD conserves energy. Training "
        "jittered the tree by 0.1 Å so the model depends little on where a split falls.",
    ],
    "clifford": [
        "5 epochs (CPU budget; the PaiNN models had 5, the Erwin models 10), and 74–84 k "
        "parameters against PaiNN's 155 k. Validation loss was still falling; the test force MAE "
        "(about 0.07 eV/Å) is well above the 0.05 eV/Å target.",
        "About 2–3× slower per call than PaiNN at equal parameter count on CPU "
        "(`benchmarks/clifford_speed.py`).",
    ],
}
CHARGES = (
    "Learned charges (Φ model) are not Mulliken charges: they were never fitted to "
    "charges and correlate weakly or not at all with them (Pearson r in the table)."
)
MD_COMMAND = (
    "phicalc md --model {name} --structure ac-ala3 --ensemble nve --temperature 300 "
    "--timestep 0.5 --steps 10000 --dtype float64 --threads 1 --out DIR"
)

for backbone in sys.argv[1:]:
    title, arch = ARCH[backbone]
    for phi in (True, False):
        name = f"{'phi-' if phi else ''}{backbone}-ac-ala3"
        recipe = f"recipes/shipped/ac_ala3_{backbone}{'_phi' if phi else ''}.yaml"
        what = f"{title} {'with the Φ-Module (spectral filter)' if phi else 'without Φ'}"
        limits = COMMON_LIMITS + EXTRA_LIMITS[backbone] + ([CHARGES] if phi else [])
        args = [
            sys.executable,
            "scripts/write_model_card.py",
            name,
            "--model",
            f"models/{name}/model.pt",
            "--eval",
            f"reports/{name}_test.json",
            "--recipe",
            recipe,
            "--description",
            f"{what} for Ac-Ala3-NHMe (42 atoms): {arch}. {DATA}",
            "--limits",
            "\n".join(f"- {line}" for line in limits),
        ]
        summary = Path(f"md_runs/closing/{name}_nve/summary.json")
        if summary.exists():
            args += ["--md", str(summary), "--md-command", MD_COMMAND.format(name=name)]
        subprocess.run(args, check=True)
