"""Potential: backbone + electrostatics + energy readout; forces and stress by autograd.

E = Σ_i E0[Z_i] + Σ_i σ·MLP(h_i) + E_Φ + E_C (+ E_Q) (+ E_rep), accumulated in float64, where
each part of the electrostatics is optional (see :class:`PotentialConfig`):

* total charge Q and spin multiplicity M enter the atom features (``charge_spin``), or, with
  ``charge_input="equilibrated"``, Q only through the equilibrated charges q⁰ (readout features
  h_i + q⁰_i a[Z_i] + q⁰_i² b[Z_i], Φ heads), so a distant neutral fragment never sees it;
* charges: equilibrated q⁰ (``charge_equilibration``: Σq⁰ = Q per structure) or Q/n, and with a
  Φ-Module ρ = L φ̂ + q⁰ (graph Poisson), else q = q⁰;
* E_Φ = ½ Σ φ_i ρ_i, the Φ-Module's graph energy;
* E_C = k_e Σ_{i<j} q_i q_j erf(r_ij/√2σ)/r_ij, physical Coulomb on the charges (``coulomb``):
  no cutoff for molecules, Ewald/PME for periodic cells; optionally switched off within r_s;
* E_Q = Σ_i (χ_i + μ) q⁰_i + ½ J_i q⁰_i², the charge equilibration's own energy with a learned
  offset μ (V) (``charge_state_energy``): how the energy of each fragment depends on its charge;
  per molecule (``equilibration_scope="molecule"``) plus the cost ½ s μᵀ L_w μ of the charge
  that flowed between molecules;
* E_rep, screened nuclear repulsion at short range (``pair_repulsion``, :mod:`phicalc.nn.repulsion`).
Forces F = −∂E/∂r and stress σ = (1/V) ∂E/∂ε come from one ``autograd.grad`` through a symmetric
strain ε applied to positions and cell (Knuth et al. 2015; as nequip's ForceStressOutput / MACE's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from ase.data import atomic_masses, atomic_numbers, chemical_symbols
from torch import nn

from phicalc.config import check_choice, config_from_dict
from phicalc.errors import ChargeStateError, ConfigError, UnknownElementError
from phicalc.graph.batch import AtomGraph
from phicalc.graph.neighbors import edge_vectors
from phicalc.nn.backbones import backbone_classes
from phicalc.nn.backbones.base import BackboneOutput, Geometry
from phicalc.nn.backbones.partition import PartitionCache
from phicalc.nn.edge_chunks import EdgeChunking
from phicalc.nn.electrostatics import ChargeEquilibration, Coulomb, CoulombConfig, equilibrate
from phicalc.nn.electrostatics.dipole import dipole_about_com
from phicalc.nn.electrostatics.fragments import equilibrate_per_molecule, transfer_charges
from phicalc.nn.electrostatics.periodic import PeriodicSums
from phicalc.nn.phi import PhiConfig, PhiModule
from phicalc.nn.phi.laplacian import GraphLaplacian, LaplacianWeights
from phicalc.nn.repulsion import NuclearRepulsion
from phicalc.nn.scatter import scatter_sum
from phicalc.potential_config import CHARGE_INPUTS, EQUILIBRATION_SCOPES, PotentialConfig

#: Output key of each given molecule's summed structure-wide equilibrium charge [n_groups] (e):
#: present only when the graph brought its molecules (``AtomGraph.molecules``).
MOLECULE_EQUILIBRIUM_CHARGES = "molecule_equilibrium_charges"


class Equilibrated(NamedTuple):
    """The charge equilibration's results for a batch (:meth:`Potential._equilibrate`)."""

    charges: torch.Tensor  # [n_atoms] q⁰ (e)
    charge_state: torch.Tensor | None  # [n_atoms] shares of E_Q (eV, float64)
    molecule_sums: torch.Tensor | None  # [n_groups] given molecules' equilibrium sums (e)


class Potential(nn.Module):
    """A trained or trainable interatomic potential (see module docstring for the energy).

    Buffers ``atomic_energies`` (E0 per element, eV, float64) and ``energy_scale`` (σ, eV) are set
    by the trainer from the training data and saved with the weights.
    """

    def __init__(self, config: PotentialConfig) -> None:
        super().__init__()
        unknown = [s for s in config.elements if s not in atomic_numbers]
        if unknown or not config.elements:
            raise ConfigError(f"elements must be chemical symbols, got {list(config.elements)}")
        if config.cutoff <= 0:
            raise ConfigError(f"cutoff must be positive, got {config.cutoff}")
        self.config = config
        config_cls, backbone_cls = backbone_classes(config.backbone)
        self.backbone = backbone_cls(
            config_from_dict(config_cls, config.backbone_config),
            cutoff=config.cutoff,
            num_elements=len(config.elements),
        )
        f = self.backbone.feature_dim
        self.readout = nn.Sequential(
            nn.Linear(f, config.readout_hidden), nn.SiLU(), nn.Linear(config.readout_hidden, 1)
        )
        self.phi: PhiModule | None = None
        if config.phi is not None:
            self.phi = PhiModule(
                config_from_dict(PhiConfig, config.phi),
                cutoff=config.cutoff,
                feature_dim=f,
                num_blocks=self.backbone.num_blocks,
            )
        check_choice("charge_input", config.charge_input, CHARGE_INPUTS)
        local = config.charge_input == "equilibrated"
        if local and not (config.charge_spin and config.charge_equilibration):
            raise ConfigError(
                'charge_input="equilibrated" needs charge_spin and charge_equilibration'
            )
        if local and self.backbone.embedding.embedding_dim != f:
            raise ConfigError(
                f'charge_input="equilibrated" adds charge terms to the readout features and '
                f"needs a backbone with an embedding as wide as its features ({f}); the "
                f"{config.backbone} backbone's is not"
            )
        if config.charge_state_energy and not config.charge_equilibration:
            raise ConfigError("charge_state_energy needs charge_equilibration (its χ and J)")
        check_choice("equilibration_scope", config.equilibration_scope, EQUILIBRATION_SCOPES)
        if config.equilibration_scope != "structure" and not config.charge_equilibration:
            raise ConfigError('equilibration_scope="molecule" needs charge_equilibration')
        if config.charge_spin:
            self.backbone.enable_charge_spin(total_charge=not local)
        self.equilibration: ChargeEquilibration | None = None
        if config.charge_equilibration:
            self.equilibration = ChargeEquilibration(f, hidden=config.readout_hidden)
        if config.charge_state_energy:  # μ (V), set from the training data, then learned
            self.charge_potential = nn.Parameter(torch.zeros(()))
        if config.equilibration_scope == "molecule":  # s = softplus(raw), initially 0.1 e/V·Å
            self.transfer_weights = LaplacianWeights(config.cutoff)
            self.raw_transfer_strength = nn.Parameter(torch.tensor(math.log(math.expm1(0.1))))
        self.coulomb: Coulomb | None = None
        if config.coulomb is not None and not self.has_charges:
            raise ConfigError("coulomb needs charges: add a Φ-Module (phi) or charge_equilibration")
        if config.coulomb is not None:
            self.coulomb = Coulomb(config_from_dict(CoulombConfig, config.coulomb))
            radius = self.coulomb.config.switch_radius
            if radius is not None and float(radius) > config.cutoff:
                msg = f"coulomb switch_radius={radius} Å exceeds the cutoff {config.cutoff} Å"
                raise ConfigError(msg + " (the switch acts over the model's neighbour list)")
        self.repulsion = NuclearRepulsion() if config.pair_repulsion else None
        species = torch.full((len(chemical_symbols),), -1, dtype=torch.int64)
        for index, symbol in enumerate(config.elements):
            species[atomic_numbers[symbol]] = index
        self.register_buffer("species_of_z", species)
        self.register_buffer(
            "atomic_energies", torch.zeros(len(config.elements), dtype=torch.float64)
        )
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))
        # atomic masses by Z (u) for the dipole's centre of mass; derived, so not saved
        self.register_buffer(
            "masses_of_z", torch.as_tensor(atomic_masses, dtype=torch.float64), persistent=False
        )

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        """Move like any module, but keep E0 and σ in float64 whatever ``.float()`` says."""
        kept = {name: getattr(self, name) for name in ("atomic_energies", "energy_scale")}
        super()._apply(fn, recurse)
        for name, value in kept.items():
            device = getattr(self, name).device
            setattr(self, name, value.to(device=device, dtype=torch.float64))
        return self

    # ------------------------------------------------------------------ properties
    @property
    def elements(self) -> list[str]:
        return list(self.config.elements)

    @property
    def cutoff(self) -> float:
        return float(self.config.cutoff)

    @property
    def has_phi(self) -> bool:
        return self.phi is not None

    @property
    def has_charges(self) -> bool:
        """Whether the model predicts per-atom charges (Φ-Module or charge equilibration)."""
        return self.phi is not None or self.equilibration is not None

    @property
    def charge_through_equilibration(self) -> bool:
        """Whether Q reaches the atoms only through the equilibrated charges
        (``charge_input="equilibrated"``)."""
        return self.config.charge_input == "equilibrated"

    @property
    def dtype(self) -> torch.dtype:
        return self.readout[0].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.readout[0].weight.device

    def set_atomic_energies(self, energies: dict[str, float] | Sequence[float]) -> None:
        """Set E0 per element (eV), as a {symbol: value} dict or a list in element order."""
        if isinstance(energies, dict):
            missing = set(self.config.elements) - set(energies)
            if missing:
                raise ConfigError(f"atomic energies missing for {sorted(missing)}")
            energies = [energies[s] for s in self.config.elements]
        self.atomic_energies.copy_(torch.as_tensor(list(energies), dtype=torch.float64))

    def set_energy_scale(self, scale: float) -> None:
        """Set σ (eV), the scale of the learned per-atom energy."""
        self.energy_scale.fill_(float(scale))

    def species(self, numbers: torch.Tensor) -> torch.Tensor:
        """Element indices of atomic numbers; unknown elements raise :class:`UnknownElementError`."""
        if numbers.numel() and (numbers.min() < 1 or numbers.max() >= len(chemical_symbols)):
            raise UnknownElementError(f"invalid atomic numbers in {numbers.unique().tolist()}")
        species = self.species_of_z[numbers]
        if numbers.numel() and bool((species < 0).any()):
            bad = sorted({chemical_symbols[int(z)] for z in numbers[species < 0].unique()})
            raise UnknownElementError(
                f"element(s) {bad} not supported by this model; it knows {self.elements}"
            )
        return species

    def check_charge_state(self, graph: AtomGraph) -> None:
        """Refuse Q ≠ 0 or M ≠ 1 unless the model takes them as inputs (``charge_spin``)."""
        if self.config.charge_spin:
            return
        charged = graph.total_charge != 0
        open_shell = graph.multiplicity != 1
        if bool(charged.any()) or bool(open_shell.any()):
            g = int(torch.nonzero(charged | open_shell)[0])
            raise ChargeStateError(
                f"structure {g} has total charge {float(graph.total_charge[g]):g} e and spin "
                f"multiplicity {float(graph.multiplicity[g]):g}, but this model was trained "
                "without charge and spin inputs: it only takes neutral singlets "
                '(atoms.info["charge"] = 0, atoms.info["spin"] = 1)'
            )

    def _laplacian(self, graph: AtomGraph, lengths: torch.Tensor) -> GraphLaplacian | None:
        """L of the batch (w_ij = u(r_ij)/r_ij at the model's cutoff), made once for the Φ
        filter and the charge transfer between molecules; ``None`` when the model has neither."""
        if self.phi is not None:
            return self.phi.laplacian(lengths, graph.edge_index, graph.n_atoms)
        if self.config.equilibration_scope == "molecule":
            weights = self.transfer_weights(lengths)
            return GraphLaplacian.of(weights, graph.edge_index, graph.n_atoms)
        return None

    def _equilibrate(
        self,
        graph: AtomGraph,
        node_features: torch.Tensor,
        lengths: torch.Tensor,
        laplacian: GraphLaplacian | None,
    ) -> Equilibrated:
        """Equilibrated charges q⁰ [n_atoms] (e) of a batch, Σq⁰ = Q per structure (with
        ``equilibration_scope="molecule"`` per molecule at formal integer charges, then moved
        between neighbours: :mod:`~phicalc.nn.electrostatics.fragments`), and with
        ``charge_state_energy`` each atom's share of E_Q ([n_atoms], eV, float64; else None);
        with molecules the graph brought, their summed equilibrium charges (for replay);
        ``laplacian``: :meth:`_laplacian`'s."""
        assert self.equilibration is not None
        chi, hardness = self.equilibration.chi_and_hardness(node_features)
        total = graph.total_charge.to(node_features.dtype)
        charges = equilibrate(chi, hardness, total, graph.batch, graph.n_graphs)
        transfer = molecule_sums = None
        if self.config.equilibration_scope == "molecule":
            charges, molecule_sums, whole = equilibrate_per_molecule(
                chi, hardness, charges, graph, lengths
            )
            assert laplacian is not None
            if not whole:  # (one molecule per structure: nothing to flow between molecules)
                charges, transfer = transfer_charges(
                    charges,
                    chi,
                    hardness,
                    laplacian,
                    nn.functional.softplus(self.raw_transfer_strength),
                )
        if not self.config.charge_state_energy:
            return Equilibrated(charges, None, molecule_sums)
        shares = (chi + self.charge_potential) * charges + 0.5 * hardness * charges * charges
        if transfer is not None:
            shares = shares + transfer
        return Equilibrated(charges, shares.to(torch.float64), molecule_sums)

    def _electrostatics(
        self,
        graph: AtomGraph,
        features: Any,
        lengths: torch.Tensor,
        positions: torch.Tensor,
        cell: torch.Tensor,
        equilibrated: Equilibrated | None = None,
        periodic_sums: PeriodicSums | None = None,
        laplacian: GraphLaplacian | None = None,
        energy_only: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Charges, potentials and the electrostatic energy parts of a batch (``equilibrated``:
        :meth:`_equilibrate`'s output when the forward pass needed it before the readout;
        ``periodic_sums``: :meth:`forward`'s; ``laplacian``: :meth:`_laplacian`'s, else made
        here; ``energy_only``: only the energy is differentiated, at a fixed cell:
        :meth:`Coulomb.forward`).

        Returns ``electrostatic_energy`` [n_graphs] (float64, eV; E_Φ + E_C) and
        ``electrostatic_energies`` [n_atoms] (its per-atom shares), and where the parts exist
        ``charges`` [n_atoms] (e), ``potentials`` [n_atoms] (V: the Coulomb potential of the
        charges when the model has a Coulomb term, else the Φ-Module's φ), ``phi_energy``,
        ``phi_potentials``, ``coulomb_energy`` (eV), and with ``charge_state_energy`` its per-atom
        shares ``charge_state_energies`` [n_atoms] (eV, float64).
        """
        float64, device = torch.float64, lengths.device
        n_graphs, batch = graph.n_graphs, graph.batch
        out: dict[str, torch.Tensor] = {
            "electrostatic_energy": torch.zeros(n_graphs, dtype=float64, device=device),
            "electrostatic_energies": torch.zeros(graph.n_atoms, dtype=float64, device=device),
        }
        if laplacian is None:
            laplacian = self._laplacian(graph, lengths)
        if equilibrated is None and self.equilibration is not None:
            equilibrated = self._equilibrate(graph, features.node_features, lengths, laplacian)
        charges = charge_state = None
        if equilibrated is not None:
            charges, charge_state, molecule_sums = equilibrated
            if molecule_sums is not None:
                out[MOLECULE_EQUILIBRIUM_CHARGES] = molecule_sums
        if charge_state is not None:
            out["charge_state_energies"] = charge_state
        if self.phi is not None:
            phi = self.phi(
                graph,
                lengths,
                features.block_features,
                base_charges=charges,
                head_charges=charges if self.charge_through_equilibration else None,
                laplacian=laplacian,
            )
            charges = phi.charges
            out["electrostatic_energy"] = out["electrostatic_energy"] + phi.energy.to(float64)
            # per-atom share ½ φ_i ρ_i, so Σ energies = energy
            out["electrostatic_energies"] = out["electrostatic_energies"] + 0.5 * (
                phi.potentials * phi.charges
            ).to(float64)
            out.update(phi_energy=phi.energy, phi_potentials=phi.potentials)
            out["potentials"] = phi.potentials
        if charges is None:
            return out
        out["charges"] = charges
        if self.coulomb is not None:
            coulomb = self.coulomb(
                charges,
                positions,
                cell,
                graph.pbc,
                batch,
                n_graphs,
                graph.host_layout,
                graph.coulomb_pairs,
                periodic_sums,
                energy_only,
                edges=(graph.edge_index, lengths),
            )
            out["electrostatic_energy"] = out["electrostatic_energy"] + coulomb.energy.to(float64)
            out["electrostatic_energies"] = out["electrostatic_energies"] + coulomb.shares.to(
                float64
            )
            out.update(coulomb_energy=coulomb.energy, potentials=coulomb.potentials)
        return out

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        graph: AtomGraph,
        *,
        compute_forces: bool = True,
        compute_stress: bool = False,
        training: bool | None = None,
        partition_cache: PartitionCache | None = None,
        validate: bool = True,
        backbone_call: Callable[[Geometry], BackboneOutput] | None = None,
        edge_chunking: EdgeChunking | None = None,
        periodic_sums: PeriodicSums | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energy, forces, stress and electrostatics of a batch.

        Args:
            graph: batch on the model's device; positions/cell are cast to the model's dtype.
            compute_forces: return ``forces`` [n_atoms, 3] (eV/Å).
            compute_stress: return ``stress`` [n_graphs, 3, 3] (eV/Å³, σ = (1/V) ∂E/∂ε;
                zeros for structures without a 3D cell).
            training: keep the graph of the derivatives for a force loss (default: ``self.training``).
            partition_cache: the caller's kept spatial partition, for backbones that partition
                space (Erwin); ``None``: a fresh one. The module itself keeps no per-call state.
            validate: check the elements and the charge state (reads device memory back to the
                host); ``False`` for a caller that has checked the same structure already (CUDA
                graph replay, :mod:`phicalc.graph_replay`).
            backbone_call: the caller's compiled backbone in place of ``self.backbone``
                (:class:`~phicalc.compiled.CompiledBackbone`); inference only.
            edge_chunking: sum the backbone's messages over runs of receivers, each recomputed
                in the backward pass (:mod:`~phicalc.nn.edge_chunks`): the memory of a large
                structure's force call stays O(run) instead of O(n_edges), for the message
                forward computed twice; inference only, for backbones with
                ``supports_edge_chunks``. ``None``: all edges at once.
            periodic_sums: what the caller keeps between calls of the Coulomb term's periodic
                sums (:class:`~phicalc.nn.electrostatics.periodic.PeriodicSums`: Ewald grids,
                PME k-space filters).

        Returns:
            ``energy`` [n_graphs] (float64), ``energies`` [n_atoms], ``electrostatic_energy``
            [n_graphs], with ``charge_state_energy`` that part E_Q [n_graphs]; with a Φ-Module
            also ``charges`` [n_atoms] (e), ``potentials`` [n_atoms] (V) and ``dipole``
            [n_graphs, 3] (e·Å, about the centre of mass).
        """
        training = self.training if training is None else training
        if training and backbone_call is not None:
            # a compiled backward is not differentiable
            raise ConfigError("compiled parts are for inference only, not training=True")
        if edge_chunking is not None:
            edge_chunking.check(self.backbone, training)
        if validate:
            self.check_charge_state(graph)
        species = self.species(graph.numbers) if validate else self.species_of_z[graph.numbers]
        dtype = self.dtype
        positions = graph.positions.to(dtype)
        cell = graph.cell.to(dtype)
        need_grad = compute_forces or compute_stress
        with torch.enable_grad() if (need_grad or training) else torch.no_grad():
            if need_grad:
                positions = positions.detach().requires_grad_(True)
            strain = None
            if compute_stress:
                strain = torch.zeros((graph.n_graphs, 3, 3), dtype=dtype, device=positions.device)
                strain.requires_grad_(True)
                symmetric = 0.5 * (strain + strain.transpose(1, 2))
                positions_used = positions + torch.einsum(
                    "na,nab->nb", positions, symmetric[graph.batch]
                )
                cell_used = cell + cell @ symmetric
            else:
                positions_used, cell_used = positions, cell
            vectors = edge_vectors(
                positions_used, cell_used, graph.edge_index, graph.unit_shifts, graph.batch
            )
            lengths = torch.linalg.norm(vectors, dim=-1)
            geometry = Geometry(
                graph,
                species,
                positions_used,
                cell_used,
                vectors,
                lengths,
                partition_cache,
                edge_chunking,
            )
            features = (self.backbone if backbone_call is None else backbone_call)(geometry)
            readout_features, equilibrated = features.node_features, None
            laplacian = self._laplacian(graph, lengths)
            if self.charge_through_equilibration:  # Q reaches the atoms only through q⁰
                assert self.backbone.charge_spin is not None
                equilibrated = self._equilibrate(graph, features.node_features, lengths, laplacian)
                readout_features = readout_features + self.backbone.charge_spin.atom_charge_term(
                    species, equilibrated.charges
                )
            atom_energy = self.readout(readout_features).squeeze(-1).to(torch.float64)
            energies = self.atomic_energies[species] + self.energy_scale * atom_energy  # [n_atoms]
            if self.repulsion is not None:
                energies = energies + self.repulsion(graph.numbers, graph.edge_index, lengths)
            outputs = self._electrostatics(
                graph,
                features,
                lengths,
                positions_used,
                cell_used,
                equilibrated,
                periodic_sums,
                laplacian,
                energy_only=not (training or compute_stress),
            )
            energies = energies + outputs.pop("electrostatic_energies")
            if "charge_state_energies" in outputs:
                shares = outputs.pop("charge_state_energies")
                energies = energies + shares
                outputs["charge_state_energy"] = scatter_sum(shares, graph.batch, graph.n_graphs)
            if "charges" in outputs:
                with torch.set_grad_enabled(training):  # only a dipole loss differentiates it
                    outputs["dipole"] = dipole_about_com(
                        outputs["charges"], positions, graph, self.masses_of_z
                    )
            energy = scatter_sum(energies, graph.batch, graph.n_graphs)  # [n_graphs]
            outputs.update(energy=energy, energies=energies)
            if need_grad:
                inputs = [positions] + ([strain] if strain is not None else [])
                grads = torch.autograd.grad(
                    energy.sum(), inputs, create_graph=training, allow_unused=True
                )
                if compute_forces:
                    outputs["forces"] = -_zeros_if_none(grads[0], positions)
                if strain is not None:
                    volume = torch.linalg.det(cell).abs()
                    safe = torch.where(volume > 0, volume, torch.ones_like(volume))
                    stress = _zeros_if_none(grads[1], strain) / safe.reshape(-1, 1, 1)
                    outputs["stress"] = torch.where(
                        volume.reshape(-1, 1, 1) > 0, stress, torch.zeros_like(stress)
                    )
        if not training:
            outputs = {k: v.detach() for k, v in outputs.items()}
        return outputs


def _zeros_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad
