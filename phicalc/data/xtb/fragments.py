"""Two-fragment geometries (dimer scans, ion–water clusters) and the fragment-charge filter.

Geometry: fragment B is rotated rigidly (a seeded uniform random rotation) and translated along
a seeded random unit vector u from A's centroid until the closest A–B atom distance (Å) is the
requested one (:func:`place_at_distance`), or until the closest pair reaches a fraction of the
sum of van der Waals radii (:func:`place_at_contact`). The outermost such translation is taken,
so B never ends up threaded through A.

Filter: GFN2-xTB leaks a spurious fractional charge between separated fragments (an artefact of
its self-consistent monopole electrostatics with a minimal basis; see
``/work/shared/notes/electrostatics.md``). For a complex of fragments A (the first ``n_A`` atoms)
and B with formal charges Q_A, Q_B, a frame is kept only if
|Σ_{i∈A} q_i − Q_A| ≤ tol (e, Mulliken charges; Σ_B follows since Σq = Q_A + Q_B). Below a
closest-atom distance ``min_distance`` the orbitals overlap and charge transfer is physical, so
such frames are not tested (the caller records how many would have failed).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

#: Van der Waals-like radii (Å) for contact distances: Bondi values; Na a cation radius.
CONTACT_RADII: dict[str, float] = {
    "H": 1.10,
    "C": 1.70,
    "N": 1.55,
    "O": 1.52,
    "F": 1.47,
    "P": 1.80,
    "S": 1.80,
    "Cl": 1.75,
    "Na": 1.40,
}
_RADII_BY_Z = {atomic_numbers[s]: r for s, r in CONTACT_RADII.items()}


def contact_radii(numbers: np.ndarray) -> np.ndarray:
    """[n] contact radii (Å) of atomic numbers; 1.8 Å for elements not tabled."""
    return np.array([_RADII_BY_Z.get(int(z), 1.8) for z in numbers])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed 3×3 rotation matrix (QR of a Gaussian matrix, det +1)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_direction(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed unit vector."""
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def closest_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest distance (Å) between point sets ``a`` [n, 3] and ``b`` [m, 3]."""
    return float(np.linalg.norm(a[:, None] - b[None], axis=-1).min())


def _min_scaled(a: Atoms, b_positions: np.ndarray, b_numbers: np.ndarray) -> float:
    d = np.linalg.norm(a.positions[:, None] - b_positions[None], axis=-1)
    radii = contact_radii(a.numbers)[:, None] + contact_radii(b_numbers)[None]
    return float((d / radii).min())


def _outermost_root(f, target: float, s_far: float, step: float = 0.1) -> float:
    """Largest s in [0, s_far] with f(s) = target, for f(s_far) > target (walk in, then bisect)."""
    hi = s_far
    lo = hi - step
    while lo > 0 and f(lo) > target:
        hi, lo = lo, lo - step
    lo = max(lo, 0.0)
    if f(lo) > target:
        return lo
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def _oriented(b: Atoms, rotation: np.ndarray) -> np.ndarray:
    centred = b.positions - b.positions.mean(axis=0)
    return centred @ rotation.T


def place_at_distance(
    a: Atoms, b: Atoms, distance_A: float, rotation: np.ndarray, direction: np.ndarray
) -> Atoms:
    """Complex A + B with B rotated and moved along ``direction`` to a closest-atom distance.

    Args:
        a: fragment A (kept in place).
        b: fragment B (rotated about its centroid by ``rotation``).
        distance_A: closest A–B atom distance, Å.
        rotation: 3×3 rotation of B.
        direction: unit vector of B's displacement from A's centroid.

    Returns:
        The complex (A's atoms first), non-periodic.
    """
    body = _oriented(b, rotation)
    origin = a.positions.mean(axis=0)

    def gap(s: float) -> float:
        return closest_distance(a.positions, origin + body + s * direction)

    s_far = distance_A + _extent(a) + _extent(b) + 1.0
    s = _outermost_root(gap, distance_A, s_far)
    return _join(a, b, origin + body + s * direction)


def place_at_contact(
    a: Atoms, b: Atoms, scale: float, rotation: np.ndarray, direction: np.ndarray
) -> Atoms:
    """Like :func:`place_at_distance`, at min over pairs of r_ij / (R_i + R_j) = ``scale``.

    R are :data:`CONTACT_RADII`; ``scale`` ≈ 0.75 is a hydrogen-bond or ion contact.
    """
    body = _oriented(b, rotation)
    origin = a.positions.mean(axis=0)

    def ratio(s: float) -> float:
        return _min_scaled(a, origin + body + s * direction, b.numbers)

    s_far = 4.0 * scale + _extent(a) + _extent(b) + 4.0
    s = _outermost_root(ratio, scale, s_far, step=0.05)
    return _join(a, b, origin + body + s * direction)


def _extent(atoms: Atoms) -> float:
    centred = atoms.positions - atoms.positions.mean(axis=0)
    return float(np.linalg.norm(centred, axis=1).max()) if len(atoms) else 0.0


def _join(a: Atoms, b: Atoms, b_positions: np.ndarray) -> Atoms:
    numbers = np.concatenate([a.numbers, b.numbers])
    positions = np.concatenate([a.positions, b_positions])
    return Atoms(numbers=numbers, positions=positions)


def fragment_charge_deviation(charges: np.ndarray, n_a: int, charge_a: float) -> float:
    """|Σ_{i<n_A} q_i − Q_A| in e: the charge fragment A has gained or lost in the complex."""
    return float(abs(np.asarray(charges, dtype=float)[:n_a].sum() - charge_a))


def passes_fragment_filter(
    charges: np.ndarray,
    n_a: int,
    charge_a: float,
    charge_b: float,
    *,
    tolerance: float = 0.01,
) -> bool:
    """Whether both fragments of a complex keep their formal charges within ``tolerance`` (e).

    Tests A and B separately (|Σ_A q − Q_A| and |Σ_B q − Q_B|), which also catches a total
    charge that does not add up.
    """
    q = np.asarray(charges, dtype=float)
    dev_a = fragment_charge_deviation(q, n_a, charge_a)
    dev_b = float(abs(q[n_a:].sum() - charge_b))
    return dev_a <= tolerance and dev_b <= tolerance


def ion_water_cluster(
    ion: str, n_water: int, rng: np.random.Generator, *, distance_A: float | None = None
) -> Atoms:
    """Ion (``"Na"`` or ``"Cl"``, at the origin) with ``n_water`` waters in a first shell.

    Waters sit on the first ``n_water`` of six octahedral directions (plus a small seeded
    tilt), each with a random spin about its axis. Na⁺: the O faces the ion at 2.35 Å with
    the H–O–H bisector pointing away; Cl⁻: one O–H bond points at the ion with H at 2.25 Å.

    Returns:
        Non-periodic cluster, ion first; ``info["charge"]`` is +1 (Na) or −1 (Cl).
    """
    if ion not in ("Na", "Cl") or not 0 <= n_water <= 6:
        raise ValueError(f"ion must be 'Na' or 'Cl' and 0 <= n_water <= 6, got {ion!r}, {n_water}")
    theta = np.deg2rad(104.5 / 2)
    r_oh = 0.9572
    # water in a local frame: O at the origin, bisector along +z, H in the xz plane
    local = np.array(
        [[0, 0, 0], [r_oh * np.sin(theta), 0, r_oh * np.cos(theta)]]
        + [[-r_oh * np.sin(theta), 0, r_oh * np.cos(theta)]]
    )
    if ion == "Cl":  # rotate so that the first O–H bond points along −z (at the ion)
        local = local @ _axis_to(local[1] / r_oh, np.array([0.0, 0.0, -1.0])).T
    axes = np.array([[0, 0, 1], [0, 0, -1], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], float)
    numbers = [11 if ion == "Na" else 17]
    positions = [np.zeros(3)]
    for k in range(n_water):
        axis = axes[k] + 0.15 * rng.standard_normal(3)
        axis /= np.linalg.norm(axis)
        spin = _rotation_about(np.array([0.0, 0.0, 1.0]), rng.uniform(0, 2 * np.pi))
        frame = _axis_to(np.array([0.0, 0.0, 1.0]), axis)
        water = (local @ spin.T) @ frame.T
        if ion == "Na":
            shift = (distance_A or 2.35) * axis
        else:
            shift = ((distance_A or 2.25) + r_oh) * axis
        numbers += [8, 1, 1]
        positions += list(water + shift)
    atoms = Atoms(numbers=numbers, positions=np.array(positions))
    atoms.info["charge"] = 1 if ion == "Na" else -1
    return atoms


def _rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _axis_to(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation taking unit vector ``source`` to unit vector ``target``."""
    v = np.cross(source, target)
    c = float(np.dot(source, target))
    if np.linalg.norm(v) < 1e-12:
        if c > 0:
            return np.eye(3)
        perpendicular = np.array([1.0, 0, 0]) if abs(source[0]) < 0.9 else np.array([0, 1.0, 0])
        return _rotation_about(np.cross(source, perpendicular), np.pi)
    return _rotation_about(v, np.arctan2(np.linalg.norm(v), c))
