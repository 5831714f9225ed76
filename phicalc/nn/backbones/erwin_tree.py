"""Rotation-invariant ball trees for the Erwin backbone, built per structure in plain torch.

The tree is a balanced binary partition of each structure's atoms, computed from detached
positions (it is a discrete choice: only the indices are kept, never gradients).

Construction (per structure with N atoms, P = 2^ceil(log2 N) slots, at least 2):

1. Every node holds n atoms and a capacity c (a power of 2, c/2 ≤ n ≤ c); the root holds all
   atoms with c = P. A node with c > 2 is split in two children of capacity c/2: the ⌈n/2⌉ atoms
   with the smallest split key go left, the others right, so the children again satisfy
   c/4 ≤ n ≤ c/2 and every leaf pair (c = 2) holds one or two atoms.
2. Split key: the projection of (r − centroid) on the principal axis (top eigenvector of the
   node's covariance), with the sign fixed so the third moment of the projections is ≥ 0. If the
   two largest eigenvalues are degenerate (relative gap ≤ ``degeneracy_tolerance``: planar rings,
   tetrahedra, spheres) the axis is ill-defined and the key is the distance to the centroid
   instead (inner half left). Exact ties fall back to the input order. Both keys are invariant
   under rotations, reflections and translations, so the partition is too (up to exact ties,
   which only occur in symmetric geometries where the tied atoms are equivalent).
3. The slot of an atom is the node offset of its leaf pair plus its rank in the pair. In slot
   order every aligned block of 2^k slots is a subtree; empty slots are masked, never duplicates.

Levels: level 0 holds the atoms; level l+1 pools aligned groups of ``stride`` slots of level l
(subtrees, so every group holds at least stride/2 atoms). A structure is coarsened only while
its level has more than one ball (more than ``ball_size`` slots) and at most ``num_levels``
times, so a structure of at most ``ball_size`` atoms is one ball and has no partition at all.
Balls are aligned blocks of ``ball_size`` slots; the shifted balls (for cross-ball mixing, as
Swin's shifted windows) start half a ball later in slot order and wrap around within the
structure. Balls never straddle structures.

What the model sees of the tree: ball membership (splits of nodes with capacity ≥ ball_size),
shifted-ball membership (capacity ≥ ball_size/2, and the order of siblings above) and pooling
groups (capacity ≥ stride). Splits of smaller nodes are never used, so with stride = ball_size
the fragile splits of 2–8 atom nodes (methyl rotors, vibrating pairs) cannot change the energy.

Ball geometry (:func:`ball_context`, :class:`GraphContext`): the differentiable distances,
envelopes and centroids the attention blocks read, in Å, from the positions and the tree indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from phicalc.nn.radial import PolynomialEnvelope
from phicalc.nn.scatter import scatter_sum


@dataclass
class TreeLevel:
    """Index tensors of one level of the hierarchy (all int64, on the positions' device).

    Attributes:
        num_nodes: number of nodes of this level; index ``num_nodes`` is the padding slot.
            Level 0 counts every atom of the batch (atoms of periodic structures are in no ball).
        balls: [n_balls, ball_size] node indices of each ball, padded with ``num_nodes``.
        shifted_balls: [n_shifted, ball_size] node indices of the shifted balls, padded likewise.
        children: [n_nodes_next, stride] nodes of this level pooled into each node of the next
            level (``num_nodes`` for an empty slot), or None at the top level.
        parents: [num_nodes] node of the next level each node is pooled into, −1 if none.
    """

    num_nodes: int
    balls: torch.Tensor
    shifted_balls: torch.Tensor
    children: torch.Tensor | None
    parents: torch.Tensor | None


@dataclass
class BallTree:
    """The ball hierarchy of a batch: ``levels[0]`` holds atoms, ``levels[l]`` pooled nodes.

    Attributes:
        levels: one :class:`TreeLevel` per level that has nodes.
        slots: [n_tree_atoms] slot of each tree atom within its structure (diagnostics, tests).
        atoms: [n_tree_atoms] atom index (into the batch) of each entry of ``slots``.
    """

    levels: list[TreeLevel]
    slots: torch.Tensor
    atoms: torch.Tensor


def _next_power_of_two(n: torch.Tensor) -> torch.Tensor:
    """Elementwise 2^ceil(log2 n) for n ≥ 1 (int64)."""
    return torch.pow(2, torch.ceil(torch.log2(n.to(torch.float64))).to(torch.int64))


def median_split_slots(
    positions: torch.Tensor,
    structure: torch.Tensor,
    capacity: torch.Tensor,
    *,
    degeneracy_tolerance: float = 1e-2,
) -> torch.Tensor:
    """Slots of a recursive principal-axis median split (see the module docstring).

    The sign of the axis is fixed by the third moment of the projections; where that vanishes
    (two-point nodes, symmetric nodes) by the direction from the parent's centroid to the node's
    centroid (the half nearer the parent centroid comes first).

    Args:
        positions: [n, 3] positions in Å (detached; float64 recommended).
        structure: [n] compact structure index of each point, 0..n_structures−1.
        capacity: [n_structures] slots per structure, powers of two ≥ 2 with
            capacity/2 < n_points ≤ capacity (or n_points = 1, capacity = 2).
        degeneracy_tolerance: relative eigenvalue gap below which the radial key is used.

    Returns:
        [n] slot of each point within its structure, in [0, capacity).
    """
    n = positions.shape[0]
    device = positions.device
    offset = torch.zeros(n, dtype=torch.int64, device=device)
    if n == 0:
        return offset
    cap_point = capacity[structure]  # [n]
    parent_centroid = positions.clone()  # placeholder; the root has no parent
    has_parent = torch.zeros(n, dtype=torch.bool, device=device)
    width = 1  # nodes per active structure at this depth
    while True:
        cap = cap_point // width  # [n] capacity of each point's current node
        active = (cap > 2).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        active_structures = capacity // width > 2  # [n_structures]
        structure_rank = torch.cumsum(active_structures.to(torch.int64), 0) - 1
        k = int(active_structures.sum()) * width
        cap_active = cap[active]
        inverse = structure_rank[structure[active]] * width + offset[active] // cap_active
        points = positions[active]  # [n_active, 3]
        count = torch.bincount(inverse, minlength=k)  # [k]
        centroid = scatter_sum(points, inverse, k) / count.clamp_min(1).unsqueeze(-1)
        delta = points - centroid[inverse]  # [n_active, 3]
        cov = scatter_sum(delta.unsqueeze(2) * delta.unsqueeze(1), inverse, k)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov / count.clamp_min(1).view(-1, 1, 1))
        axis = eigenvectors[..., 2]  # [k, 3] top eigenvector (ascending order)
        projection = (delta * axis[inverse]).sum(-1)  # [n_active]
        spread = eigenvalues[:, 2].clamp_min(1e-30)  # [k] variance along the axis, Å²
        skewness = scatter_sum(projection**3, inverse, k) / (count * spread.pow(1.5))
        outward = scatter_sum(
            ((centroid[inverse] - parent_centroid[active]) * axis[inverse]).sum(-1)
            * has_parent[active],
            inverse,
            k,
        )
        sign = torch.where(
            skewness.abs() > 1e-6, torch.sign(skewness), torch.where(outward < 0, -1.0, 1.0)
        ).to(projection.dtype)
        projection = projection * sign[inverse]
        degenerate = eigenvalues[:, 2] - eigenvalues[:, 1] <= degeneracy_tolerance * spread
        radial = torch.linalg.norm(delta, dim=-1)
        key = torch.where(degenerate[inverse], radial, projection)
        # Sort by (node, key, input order): two stable sorts.
        order = torch.argsort(key, stable=True)
        order = order[torch.argsort(inverse[order], stable=True)]
        start = torch.cumsum(count, 0) - count
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.shape[0], device=device) - start[inverse[order]]
        right = rank >= ((count + 1) // 2)[inverse]
        offset[active] = offset[active] + right.to(torch.int64) * (cap_active // 2)
        parent_centroid[active] = centroid[inverse]
        has_parent[active] = True
        width *= 2
    # Leaf pairs (capacity 2): the atom first in input order takes the first slot.
    node = structure * int(capacity.max()) + offset
    order = torch.argsort(node, stable=True)
    sorted_node = node[order]
    first = torch.ones_like(sorted_node, dtype=torch.bool)
    first[1:] = sorted_node[1:] != sorted_node[:-1]
    rank = torch.empty_like(order)
    rank[order] = (~first).to(torch.int64)
    return offset + rank


def _ball_slot_rows(
    num_slots: torch.Tensor, ball_size: int, *, shifted: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot indices of every ball of every structure of a level.

    Args:
        num_slots: [n_structures] slots per structure at this level (powers of two).
        ball_size: m.
        shifted: start balls half a ball later (wrapping) where a structure has ≥ 2 balls.

    Returns:
        row_structure: [n_rows] structure of each ball.
        slots: [n_rows, m] slot within the structure, −1 for padding.
    """
    device = num_slots.device
    rows = torch.clamp(num_slots // ball_size, min=1)  # [n_structures]
    row_structure = torch.repeat_interleave(torch.arange(num_slots.shape[0], device=device), rows)
    first_row = torch.cumsum(rows, 0) - rows
    row_in_structure = (
        torch.arange(row_structure.shape[0], device=device) - first_row[row_structure]
    )
    t = torch.arange(ball_size, device=device)
    n = num_slots[row_structure].unsqueeze(1)  # [n_rows, 1]
    slots = row_in_structure.unsqueeze(1) * ball_size + t  # [n_rows, m]
    if shifted:
        wrap = (n >= 2 * ball_size).expand_as(slots)
        slots = torch.where(wrap, (slots + ball_size // 2) % n, slots)
    slots = torch.where(t < n, slots, torch.full_like(slots, -1))
    return row_structure, slots


def _level_balls(
    num_slots: torch.Tensor,
    offsets: torch.Tensor,
    table: torch.Tensor,
    num_nodes: int,
    ball_size: int,
    *,
    shifted: bool,
) -> torch.Tensor:
    """[n_balls, m] node indices of a level's balls (padding ``num_nodes``).

    Args:
        num_slots: [n_structures] slots per structure at this level.
        offsets: [n_structures] first slot of each structure in ``table``.
        table: [total_slots] node index of every slot (``num_nodes`` for an empty slot).
        num_nodes: padding index.
        ball_size: m.
        shifted: the shifted balls instead of the tree's.
    """
    row, local = _ball_slot_rows(num_slots, ball_size, shifted=shifted)
    index = offsets[row].unsqueeze(1) + local.clamp_min(0)
    return torch.where(local >= 0, table[index], torch.full_like(local, num_nodes))


def build_ball_tree(
    positions: torch.Tensor,
    batch: torch.Tensor,
    n_graphs: int,
    include: torch.Tensor,
    *,
    ball_size: int,
    num_levels: int,
    stride: int = 2,
    degeneracy_tolerance: float = 1e-2,
) -> BallTree:
    """Ball hierarchy of the included structures of a batch (indices only, no gradients).

    Args:
        positions: [n_atoms, 3] positions in Å (detached here; the build runs in float64).
        batch: [n_atoms] structure index of each atom.
        n_graphs: number of structures in the batch.
        include: [n_graphs] bool, structures that get a tree (the open ones).
        ball_size: m, a power of two ≥ 4.
        num_levels: maximum number of coarsening steps.
        stride: slots pooled into one node of the next level, a power of two in [2, ball_size].
        degeneracy_tolerance: see :func:`median_split_slots`.

    Returns:
        The :class:`BallTree`; level 0 indexes all ``n_atoms`` atoms.
    """
    device = positions.device
    n_atoms = positions.shape[0]
    with torch.no_grad():
        atoms = include[batch].nonzero().squeeze(1)  # [n_tree_atoms]
        graphs, structure = torch.unique(batch[atoms], return_inverse=True)
        counts = torch.bincount(structure, minlength=graphs.shape[0])
        capacity = torch.clamp(_next_power_of_two(counts.clamp_min(1)), min=2)
        slots = median_split_slots(
            positions.detach()[atoms].to(torch.float64),
            structure,
            capacity,
            degeneracy_tolerance=degeneracy_tolerance,
        )

        # Level 0: slot → atom table (−1 for empty slots).
        slot_offset = torch.cumsum(capacity, 0) - capacity
        slot_atom = torch.full((int(capacity.sum()),), -1, dtype=torch.int64, device=device)
        slot_atom[slot_offset[structure] + slots] = atoms

        levels: list[TreeLevel] = []
        members = torch.arange(graphs.shape[0], device=device)  # structures present at level
        num_slots = capacity
        table = torch.where(slot_atom >= 0, slot_atom, torch.full_like(slot_atom, n_atoms))
        num_nodes = n_atoms
        level = 0
        while True:
            offsets = torch.cumsum(num_slots, 0) - num_slots

            balls, shifted_balls = (
                _level_balls(num_slots, offsets, table, num_nodes, ball_size, shifted=shifted)
                for shifted in (False, True)
            )
            deeper = num_slots > ball_size  # structures with more than one ball: coarsen
            if level >= num_levels or not bool(deeper.any()):
                levels.append(TreeLevel(num_nodes, balls, shifted_balls, None, None))
                break
            next_members = members[deeper]
            next_slots = num_slots[deeper] // stride
            group_structure = torch.repeat_interleave(
                torch.arange(next_members.shape[0], device=device), next_slots
            )
            next_offsets = torch.cumsum(next_slots, 0) - next_slots
            group = torch.arange(int(next_slots.sum()), device=device)
            group = group - next_offsets[group_structure]
            base = offsets[deeper][group_structure] + stride * group  # first slot at this level
            children = table[base.unsqueeze(1) + torch.arange(stride, device=device)]
            parents = torch.full((num_nodes,), -1, dtype=torch.int64, device=device)
            real = children < num_nodes  # [n_next, stride]
            node_ids = torch.arange(children.shape[0], device=device).unsqueeze(1)
            parents[children[real]] = node_ids.expand_as(children)[real]
            levels.append(TreeLevel(num_nodes, balls, shifted_balls, children, parents))
            members, num_slots = next_members, next_slots
            num_nodes = children.shape[0]
            table = torch.arange(num_nodes, device=device)
            level += 1
    return BallTree(levels=levels, slots=slots, atoms=atoms)


#: δ of the smooth norm sqrt(‖x‖² + δ²) − δ (Å), used where a distance reaches 0 continuously.
SMOOTH_NORM_DELTA = 0.1


def smooth_norm(vectors: torch.Tensor) -> torch.Tensor:
    """sqrt(‖x‖² + δ²) − δ along the last axis: ≈ ‖x‖, smooth at x = 0 (δ = 0.1 Å).

    For quantities that reach zero continuously (an atom at its ball's centroid).
    """
    delta = SMOOTH_NORM_DELTA
    return torch.sqrt((vectors * vectors).sum(-1) + delta * delta) - delta


def pair_norm(vectors: torch.Tensor) -> torch.Tensor:
    """Exact ‖x‖ along the last axis, with value and gradient 0 where x is exactly 0.

    For distances that are zero only structurally (a node to itself, a one-child parent to its
    child, padding), so envelopes vanish exactly at their radius and no NaN gradient appears.
    """
    squared = (vectors * vectors).sum(-1)
    positive = squared > 0
    safe = torch.where(positive, squared, torch.ones_like(squared))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(squared))


@dataclass
class BallContext:
    """Geometry of one partition of one level, shared by the blocks that use it.

    Attributes:
        balls: [n_balls, m] node indices, padded with ``num_nodes``.
        valid: [n_balls, m] real nodes.
        weights: [n_balls, m, m] envelope u(d_ij) with radius r, 0 for padding keys.
        distances: [n_balls, m, m] d_ij / r (exact distances).
        centroid_distance: [n_balls, m] smooth ‖r_i − c_i‖ / r, c_i = Σ_j u_ij r_j / Σ_j u_ij.
        nodes: [n_real] node index of each real entry, in ``balls[valid]`` order.
    """

    balls: torch.Tensor
    valid: torch.Tensor
    weights: torch.Tensor
    distances: torch.Tensor
    centroid_distance: torch.Tensor
    nodes: torch.Tensor


@dataclass
class GraphContext:
    """Local-graph attention of periodic structures (level 0 only).

    Attributes:
        atoms: [n_periodic] atoms attending over the graph.
        senders, receivers: [n_edges] edge endpoints (atom indices), receivers in ``atoms``.
        weights: [n_edges] envelope u(d_ij) with radius r = min(attention radius, cutoff).
        distances: [n_edges] d_ij / r.
        centroid_distance: [n_periodic] ‖Σ_i u_ij r_ij‖ / (1 + Σ_i u_ij) / r.
    """

    atoms: torch.Tensor
    senders: torch.Tensor
    receivers: torch.Tensor
    weights: torch.Tensor
    distances: torch.Tensor
    centroid_distance: torch.Tensor


def ball_context(
    positions: torch.Tensor,
    balls: torch.Tensor,
    num_nodes: int,
    envelope: PolynomialEnvelope,
    radius: float,
) -> BallContext:
    """Differentiable distances, envelopes and centroids inside each ball.

    Args:
        positions: [num_nodes, 3] node positions, Å.
        balls: [n_balls, m] node indices padded with ``num_nodes``.
        num_nodes: number of real nodes.
        envelope: u on unscaled distances (cutoff = radius).
        radius: r of this level, Å.
    """
    padded = torch.cat([positions, positions.new_zeros((1, 3))])
    valid = balls < num_nodes  # [B, m]
    points = padded[balls]  # [B, m, 3]
    difference = points.unsqueeze(1) - points.unsqueeze(2)  # [B, i, j, 3] = r_j − r_i
    distance = pair_norm(difference)  # [B, m, m]
    weights = envelope(distance) * valid.unsqueeze(1)  # [B, m, m]
    centroid_offset = (weights.unsqueeze(-1) * difference).sum(2) / weights.sum(2).clamp_min(
        1e-12
    ).unsqueeze(-1)  # [B, m, 3]
    return BallContext(
        balls=balls,
        valid=valid,
        weights=weights,
        distances=distance / radius,
        centroid_distance=smooth_norm(centroid_offset) / radius,
        nodes=balls[valid],
    )
