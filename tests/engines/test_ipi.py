"""The i-PI client (phicalc.engines.ipi, ``phicalc ipi``).

* In-process, against ASE's ``SocketServer`` (the server side of the same protocol): one
  evaluation returns PhiCalculator's energy and forces to 1e-8 (eV, eV/Å), the virial -Vσ of a
  periodic cell and the charges/potentials as JSON extras.
* With the real i-PI server (``i-pi input.xml`` in a subprocess, UNIX socket): a 4-bead PIMD of
  water served by one client and by two clients gives the same trajectory (slow).
* A server that hangs up with the client's last reply unread (a reset, as i-PI does at the end of
  a run with several clients) ends the client's session cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.socketio import SocketServer

from phicalc.calculator import PhiCalculator
from phicalc.engines.ipi import UNIX_PREFIX, Address, IPIClient
from phicalc.testing import small_periodic_cell

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_address_parse():
    assert Address.parse("unix:phicalc").unix == UNIX_PREFIX + "phicalc"
    assert Address.parse("unix:/tmp/x.sock").unix == "/tmp/x.sock"
    assert Address.parse("example.org:31415") == Address(host="example.org", port=31415)
    for bad in ("unix:", "nohost", "host:port"):
        with pytest.raises(ValueError):
            Address.parse(bad)


@pytest.mark.parametrize("kind", ["molecule", "periodic"])
def test_one_step_equals_calculator(tiny_model, kind):
    atoms = molecule("CH3OH") if kind == "molecule" else small_periodic_cell(2)
    atoms.rattle(0.02, seed=3)
    name = f"phicalc-test-{uuid.uuid4().hex[:8]}"
    calc = PhiCalculator(tiny_model, dtype="float64", device="cpu")
    with SocketServer(unixsocket=name, timeout=60) as server:
        client = IPIClient(
            PhiCalculator(tiny_model, dtype="float64", device="cpu"), atoms, f"unix:{name}"
        )
        worker = threading.Thread(target=client.serve, kwargs={"connect_timeout": 30})
        worker.start()
        sent = atoms.copy()
        sent.positions += 0.01  # the client must use the server's geometry, not its template
        got = server.calculate(sent)
    worker.join(30)
    assert not worker.is_alive() and client.n_evaluations == 1

    sent.calc = calc
    np.testing.assert_allclose(got["energy"], sent.get_potential_energy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(got["forces"], sent.get_forces(), rtol=0, atol=1e-8)
    if kind == "periodic":
        virial = -sent.get_volume() * sent.get_stress(voigt=False)
        np.testing.assert_allclose(got["virial"], virial, rtol=0, atol=1e-8)
    else:
        assert np.all(got["virial"] == 0)
    extras = json.loads(bytes(got["morebytes"]).decode())
    np.testing.assert_allclose(extras["charges"], calc.results["charges"], atol=1e-12)
    np.testing.assert_allclose(extras["potentials"], calc.results["potentials"], atol=1e-12)
    np.testing.assert_allclose(extras["dipole"], calc.results["dipole"], atol=1e-12)


def run_pimd(workdir: Path, model: Path, n_clients: int) -> tuple[np.ndarray, np.ndarray]:
    """Run examples/ipi/input.xml for 3 steps with ``n_clients`` phicalc clients; returns the
    properties table and the bead-0 trajectory."""
    workdir.mkdir()
    for f in ("input.xml", "h2o.xyz"):
        shutil.copy(ROOT / "examples" / "ipi" / f, workdir / f)
    name = f"phicalc-pimd-{uuid.uuid4().hex[:8]}"
    xml = (workdir / "input.xml").read_text()
    xml = xml.replace("<address> phicalc </address>", f"<address> {name} </address>")
    xml = xml.replace("<total_steps> 200 </total_steps>", "<total_steps> 3 </total_steps>")
    xml = xml.replace('stride="10"', 'stride="1"')
    (workdir / "input.xml").write_text(xml)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["OMP_NUM_THREADS"] = "1"
    ipi = shutil.which("i-pi", path=str(Path(sys.executable).parent)) or "i-pi"
    client_cmd = [sys.executable, "-m", "phicalc.cli.main", "ipi", "--model", str(model)]
    client_cmd += ["--structure", "h2o.xyz", "--address", f"unix:{name}", "--device", "cpu"]
    # Clients first, server once every client waits for it: else a fast first client can
    # serve the whole 3-step run before a slower one has started, which then finds no server.
    clients = [
        subprocess.Popen(client_cmd, cwd=workdir, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(n_clients)
    ]
    for client in clients:
        for line in client.stderr:
            if "waiting for the i-PI server" in line:
                break
    server = subprocess.Popen([ipi, "input.xml"], cwd=workdir, env=env, stdout=subprocess.DEVNULL)
    try:
        assert server.wait(240) == 0
        for client in clients:
            assert client.wait(60) == 0
    finally:
        for process in (server, *clients):
            if process.poll() is None:
                process.kill()
    table = np.loadtxt(workdir / "h2o.out")
    from ase.io import read

    trajectory = np.array([a.positions for a in read(workdir / "h2o.pos_0.xyz", index=":")])
    return table, trajectory


@pytest.mark.slow
def test_pimd_one_client_equals_two(tmp_path, tiny_model_path, tiny_model):
    pytest.importorskip("ipi")
    one = run_pimd(tmp_path / "one", tiny_model_path, 1)
    two = run_pimd(tmp_path / "two", tiny_model_path, 2)
    assert one[0].shape[0] == 4  # steps 0..3
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    # step 0: all four beads sit on the initial geometry, so the bead-averaged potential is V(x0)
    from ase.io import read

    atoms = read(ROOT / "examples" / "ipi" / "h2o.xyz")
    atoms.calc = PhiCalculator(tiny_model, dtype="float64", device="cpu")
    assert one[0][0, 4] == pytest.approx(atoms.get_potential_energy(), abs=1e-5)


def test_server_hanging_up_with_unread_reply_ends_cleanly(tmp_path, tiny_model):
    """i-PI exiting while a client's STATUS reply sits unread resets the client's socket; the
    client must end its session (exit 0 in ``phicalc ipi``), as it does on an orderly close."""
    import select
    import socket

    path = str(tmp_path / "ipi.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def server() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"STATUS".ljust(12))
        select.select([conn], [], [], 30)  # the client's READY has arrived ...
        conn.close()  # ... and is never read: the kernel resets the client's side

    thread = threading.Thread(target=server)
    thread.start()
    client = IPIClient(PhiCalculator(tiny_model, device="cpu"), molecule("H2O"), Address(unix=path))
    assert client.serve(connect_timeout=30) == 0
    thread.join(30)
    listener.close()
