"""A held-out test of Na⁺ and Cl⁻ at contact: relaxed Na–Cl distance scans of NaCl(H2O)n clusters.

No training set holds Na and Cl together in an open cluster (they meet only in periodic water
boxes, and the "+ contact frames" pilot arm saw frames of one such box at contact), so these
scans test whether a model's ion pair at contact carries over to new surroundings.

``--label``: for each water count n and seed, n waters are placed around a Na–Cl pair 2.7 Å apart
(O 2.35 Å from Na with both H pointing away, or O 3.15 Å from Cl with one H pointing at it), the
waters relaxed by GFN2-xTB (tblite) with the Na–Cl distance held (ASE ``FixBondLength``, BFGS);
then the pair is moved apart step by step to 5 Å and together to 2.0 Å, the waters relaxed again at
each distance from the previous one, and every relaxed geometry labelled (energy, forces, Mulliken
charges). Q = 0, singlet. Frames carry ``info["scan"]``, ``["r_nacl"]``, ``["n_water"]``.

``--score``: per model, over all scans: the energy curve E(r) against GFN2-xTB's (each scan's
curve shifted to its mean, MAE in eV), the wall E(2.0 Å) − E(2.7 Å), the distance of each scan's
minimum, the force MAE, and the ions' charges at 2.7 Å.

    python scripts/nacl_cluster_scan.py --label --waters 3 5 --seeds 0 1 \\
        --out data/nacl_cluster_scan.extxyz
    python scripts/nacl_cluster_scan.py --score data/nacl_cluster_scan.extxyz \\
        --model phi-painn-organic --model runs/pilot/molecule_scope_bound_contact_seed0/best_model.pt
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.constraints import FixBondLength
from ase.optimize import BFGS
from tqdm.auto import tqdm

CONTACT = 2.7  # Å, where the waters are first relaxed
DISTANCES_OUT = (2.7, 2.9, 3.1, 3.4, 3.7, 4.1, 4.5, 5.0)
DISTANCES_IN = (2.5, 2.35, 2.2, 2.1, 2.0)
WALL = (2.0, 2.7)  # the wall's height is E(2.0) − E(2.7)


def place_waters(n_water: int, seed: int) -> Atoms:
    """Na at the origin, Cl at (CONTACT, 0, 0), and ``n_water`` waters around them (no clash)."""
    rng = np.random.default_rng(seed)
    ions = Atoms("NaCl", positions=[[0.0, 0.0, 0.0], [CONTACT, 0.0, 0.0]])
    water = molecule("H2O")
    oxygens: list[np.ndarray] = []
    cluster = ions.copy()
    for k in range(n_water):
        on_na = k % 2 == 0
        centre = ions.positions[0 if on_na else 1]
        for _ in range(1000):
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            if (direction[0] > 0.3) if on_na else (direction[0] < -0.3):
                continue  # not in between the ions
            o = centre + (2.35 if on_na else 3.15) * direction
            far_from_ions = all(np.linalg.norm(o - p) > 2.3 for p in ions.positions)
            if far_from_ions and all(np.linalg.norm(o - p) > 2.7 for p in oxygens):
                break
        else:
            raise RuntimeError(f"no room for water {k} of {n_water} (seed {seed})")
        h2o = water.copy()
        h2o.positions -= h2o.positions[0]
        bisector = h2o.positions[1:].mean(axis=0)
        bisector /= np.linalg.norm(bisector)
        if on_na:  # both H away from Na: the bisector along +direction
            h2o.rotate(bisector, direction)
        else:  # one O–H bond pointing at Cl
            bond = h2o.positions[1] / np.linalg.norm(h2o.positions[1])
            h2o.rotate(bond, -direction)
        if on_na:  # a random turn about the Na–O axis
            h2o.rotate(rng.uniform(0, 360), direction, center=(0, 0, 0))
        h2o.positions += o
        oxygens.append(o)
        cluster += h2o
    cluster.info.update(charge=0.0, spin=1, n_water=n_water)
    return cluster


def relaxed_at(atoms: Atoms, r: float, calc, fmax: float, steps: int) -> Atoms:
    """``atoms`` with Cl moved along the Na→Cl axis to ``r`` Å from Na, the rest relaxed."""
    work = atoms.copy()
    axis = work.positions[1] - work.positions[0]
    work.positions[1] = work.positions[0] + r * axis / np.linalg.norm(axis)
    work.set_constraint(FixBondLength(0, 1))
    work.calc = calc
    BFGS(work, logfile=None).run(fmax=fmax, steps=steps)
    work.set_constraint()
    return work


def label(waters: list[int], seeds: list[int], out: Path, fmax: float, steps: int) -> None:
    from phicalc.data import write_structures
    from phicalc.data.xtb.single_point import label_structure, xtb_calculator

    calc = xtb_calculator("GFN2-xTB", charge=0)
    records = []
    jobs = [(n, s) for n in waters for s in seeds]
    for n_water, seed in tqdm(jobs, desc="NaCl(H2O)n scans", unit="scan"):
        scan = f"nacl_{n_water}w_s{seed}"
        contact = relaxed_at(place_waters(n_water, seed), CONTACT, calc, fmax, steps)
        for distances in (DISTANCES_OUT, DISTANCES_IN):
            current = contact
            for r in distances:
                current = relaxed_at(current, r, calc, fmax, steps)
                info = {"scan": scan, "r_nacl": r, "n_water": n_water, "molecule": scan}
                records.append(label_structure(current, info=info))  # a fresh SCF per label
    records.sort(key=lambda a: (a.info["scan"], a.info["r_nacl"]))
    write_structures(out, records)
    print(f"{out}: {len(records)} frames, {len(jobs)} scans")


def score(path: Path, models: list[str]) -> None:
    import ase.io

    from phicalc import PhiCalculator

    frames = ase.io.read(path, index=":")
    scans = sorted({a.info["scan"] for a in frames})
    ref_e = np.array([a.get_potential_energy() for a in frames])
    ref_f = [a.get_forces() for a in frames]
    r = np.array([a.info["r_nacl"] for a in frames])
    scan_of = np.array([a.info["scan"] for a in frames])

    def curve_stats(energies: np.ndarray) -> tuple[list[float], list[float], list[float]]:
        shifted, walls, minima = [], [], []
        for name in scans:
            m = scan_of == name
            shifted.append(energies[m] - energies[m].mean())
            at = {float(x): e for x, e in zip(r[m], energies[m])}
            walls.append(at[WALL[0]] - at[WALL[1]])
            minima.append(float(r[m][np.argmin(energies[m])]))
        return shifted, walls, minima

    ref_shifted, ref_walls, ref_minima = curve_stats(ref_e)
    ref_q = np.array(
        [a.arrays["ref_charges"][:2] for a in frames if abs(a.info["r_nacl"] - CONTACT) < 1e-6]
    )
    print(f"{path}: {len(frames)} frames, {len(scans)} scans ({', '.join(scans)})")
    print(
        f"GFN2-xTB: wall E(2.0)-E(2.7) {np.mean(ref_walls):+.3f} eV (per scan "
        f"{', '.join(f'{w:+.2f}' for w in ref_walls)}); minima at "
        f"{', '.join(f'{x:.2f}' for x in ref_minima)} Å; Na/Cl Mulliken at 2.7 Å "
        f"{ref_q[:, 0].mean():+.2f}/{ref_q[:, 1].mean():+.2f} e"
    )
    header = (
        f"{'model':58s} {'E(r) MAE eV':>11s} {'wall eV':>8s} {'minima Å':>22s} "
        f"{'F MAE eV/Å':>10s} {'q Na/Cl at 2.7':>15s}"
    )
    print(header)
    for model in models:
        calc = PhiCalculator(model, device="cpu", dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # extrapolation warnings at 2.0 Å are expected
            results = calc.calculate_batch(frames)
        energies = np.array([res["energy"] for res in results])
        shifted, walls, minima = curve_stats(energies)
        e_mae = np.mean(np.abs(np.concatenate(shifted) - np.concatenate(ref_shifted)))
        f_mae = np.mean([np.abs(res["forces"] - f).mean() for res, f in zip(results, ref_f)])
        charges = [
            res.get("charges", np.full(len(a), np.nan))[:2]
            for res, a in zip(results, frames)
            if abs(a.info["r_nacl"] - CONTACT) < 1e-6
        ]
        q = np.array(charges)
        print(
            f"{model:58s} {e_mae:11.3f} {np.mean(walls):+8.3f} "
            f"{', '.join(f'{x:.2f}' for x in minima):>22s} {f_mae:10.3f} "
            f"{q[:, 0].mean():+7.2f}/{q[:, 1].mean():+.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", action="store_true", help="make the labelled scans")
    parser.add_argument("--waters", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--fmax", type=float, default=0.05, help="BFGS stop, eV/Å")
    parser.add_argument("--steps", type=int, default=150, help="BFGS steps per distance")
    parser.add_argument("--out", type=Path, default=Path("data/nacl_cluster_scan.extxyz"))
    parser.add_argument("--score", type=Path, help="score models on this scan file")
    parser.add_argument("--model", action="append", default=[], help="model name or file")
    args = parser.parse_args()
    if args.label:
        label(args.waters, args.seeds, args.out, args.fmax, args.steps)
    if args.score is not None:
        score(args.score, args.model)
    if not args.label and args.score is None:
        parser.error("give --label and/or --score FILE")


if __name__ == "__main__":
    main()
