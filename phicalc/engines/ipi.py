"""i-PI client: a phicalc calculator serving forces to an i-PI server over its socket protocol.

i-PI (https://ipi-code.org) owns the dynamics (path integrals, thermostats, replica exchange) and
asks connected clients, one bead/replica at a time, for the potential energy, forces and virial
of a geometry. The wire protocol is ASE's :class:`~ase.calculators.socketio.IPIProtocol`
(12-byte ASCII headers, float64 payloads in Hartree atomic units); this module adds the loop of a
driver and phicalc's physics:

* i-PI sends positions and the cell (rows, converted to Å by the protocol) but no species: the
  client takes symbols, atom order and periodicity from a template structure, which must match
  the server's initial configuration.
* energy: eV → Ha by the protocol; forces eV/Å; virial W = -V σ (eV, the 3×3 stress times the
  cell volume, zero for non-periodic structures), as ASE's own client sends it.
* extras (the protocol's free-form trailing bytes): a JSON object with per-atom ``charges`` (e),
  ``potentials`` (V) and the ``dipole`` (e·Å) and ``electrostatic_energy`` (eV) when the model
  has them; i-PI parses it and can write it with ``<trajectory> extras </trajectory>``.

Several clients may serve one server (i-PI hands beads to whichever client is free); each is an
independent process with its own :class:`~phicalc.calculator.PhiCalculator`.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.socketio import IPIProtocol, SocketClosed

logger = logging.getLogger(__name__)

#: i-PI's default prefix of UNIX socket names (``<address>NAME</address>`` → /tmp/ipi_NAME).
UNIX_PREFIX = "/tmp/ipi_"
EXTRAS = ("charges", "potentials", "dipole", "electrostatic_energy")
#: How a server that has finished may hang up: an orderly close, or (a server exiting with our
#: last STATUS reply still unread in its buffer) a reset or broken pipe. Each ends the session.
SERVER_GONE = (SocketClosed, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Address:
    """Where the i-PI server listens: a UNIX socket path, or host and TCP port."""

    unix: str | None = None
    host: str = "localhost"
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Address:
        """``unix:NAME`` (i-PI's ``<address>NAME</address>``, i.e. /tmp/ipi_NAME; a NAME
        starting with ``/`` is taken as the full path) or ``HOST:PORT`` (TCP)."""
        if text.startswith("unix:"):
            name = text[len("unix:") :]
            if not name:
                raise ValueError("unix: needs a socket name, e.g. unix:phicalc")
            return cls(unix=name if name.startswith("/") else UNIX_PREFIX + name)
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"address {text!r} is neither unix:NAME nor HOST:PORT")
        return cls(host=host or "localhost", port=int(port))

    def connect(self, timeout: float = 60.0) -> socket.socket:
        """A connected socket, retrying while the server is not listening yet (up to
        ``timeout`` seconds: clients are often started alongside the server)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.unix is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: Any = self.unix
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                target = (self.host, self.port)
            try:
                sock.connect(target)
                return sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise ConnectionError(f"no i-PI server at {target} after {timeout} s") from None
                time.sleep(0.1)


def extras_json(results: dict[str, Any]) -> str:
    """The electrostatics of a result dict as the JSON string sent as i-PI extras."""
    out = {}
    for name in EXTRAS:
        if name in results:
            value = results[name]
            out[name] = value.tolist() if isinstance(value, np.ndarray) else float(value)
    return json.dumps(out)


class IPIClient:
    """Serve ``calculator``'s energy, forces, virial and electrostatics to an i-PI server.

    Args:
        calculator: any ASE calculator; with a :class:`~phicalc.calculator.PhiCalculator` the
            extras carry charges and potentials.
        template: symbols, atom order, periodicity and ``info`` (charge, spin) of the system;
            i-PI supplies positions and cell.
        address: :class:`Address` or its string form.
    """

    def __init__(
        self, calculator: Calculator, template: Atoms, address: Address | str, *, log: Any = None
    ) -> None:
        self.calculator = calculator
        self.atoms = template.copy()
        self.atoms.calc = calculator
        self.address = Address.parse(address) if isinstance(address, str) else address
        self.log = log
        self.n_evaluations = 0
        self.bead_index: int | None = None

    def compute(self) -> tuple[float, np.ndarray, np.ndarray, str]:
        """(energy eV, forces [n_atoms, 3] eV/Å, virial [3, 3] eV, extras JSON) of ``self.atoms``."""
        atoms = self.atoms
        virial = np.zeros((3, 3))
        if atoms.cell.rank == 3 and atoms.pbc.any():  # asked first: one pass fills the rest
            virial = -atoms.get_volume() * atoms.get_stress(voigt=False)
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        return energy, forces, virial, extras_json(self.calculator.results)

    def serve(self, connect_timeout: float = 60.0) -> int:
        """Answer the server until it sends EXIT or hangs up; returns the number of evaluations.

        i-PI ends a run by closing its sockets, and with several clients it may do so while a
        client's STATUS reply is still unread, which reaches the client as a reset: that is the
        end of the session, not an error (evaluations were all answered by then)."""
        logger.info("waiting for the i-PI server at %s", self.address)
        sock = self.address.connect(connect_timeout)
        protocol = IPIProtocol(sock, txt=self.log)
        state, reply = "READY", None
        try:
            while True:
                try:
                    message = protocol.recvmsg()
                except SERVER_GONE:
                    break
                if message == "EXIT":
                    break
                if message == "STATUS":
                    try:
                        protocol.sendmsg(state)
                    except SERVER_GONE:
                        break
                elif message == "INIT":
                    bead, _ = protocol.recvinit()
                    self.bead_index = int(np.asarray(bead).ravel()[0])
                elif message == "POSDATA":
                    cell, _, positions = protocol.recvposdata()
                    if len(positions) != len(self.atoms):
                        raise ValueError(
                            f"i-PI sent {len(positions)} atoms, the template has {len(self.atoms)}"
                        )
                    self.atoms.cell[:] = cell
                    self.atoms.positions[:] = positions
                    reply = self.compute()
                    self.n_evaluations += 1
                    state = "HAVEDATA"
                elif message == "GETFORCE":
                    if reply is None:
                        raise RuntimeError("i-PI asked for forces before sending positions")
                    energy, forces, virial, extras = reply
                    payload = np.frombuffer(extras.encode("utf-8"), dtype=np.byte)
                    protocol.sendforce(energy, forces, virial, morebytes=payload)
                    state, reply = "READY", None
                else:
                    raise RuntimeError(f"unexpected i-PI message {message!r}")
        finally:
            sock.close()
        logger.info("i-PI client done after %d evaluations", self.n_evaluations)
        return self.n_evaluations
