from __future__ import annotations

import pytest

pytest.importorskip("tblite")

from phicalc.cli.main import main  # noqa: E402
from phicalc.data.datasets import read_structures  # noqa: E402

FAST = ["--frames", "2", "--interval", "2", "--equilibration", "0", "--no-progress"]


def test_label_smiles_success(tmp_path, capsys):
    out = tmp_path / "water.extxyz"
    code = main(
        ["label", "--smiles", "O", "--temperatures", "300", "--seed", "1", "--out", str(out), *FAST]
    )
    assert code == 0
    records = read_structures(out, require_labels=True)
    assert len(records) == 2 and records[0].info["smiles"] == "O"
    assert "2 frames written" in capsys.readouterr().out


def test_label_structure_and_smiles_file(tmp_path):
    smiles_file = tmp_path / "mols.txt"
    smiles_file.write_text("C methane\n")
    out = tmp_path / "a.extxyz"
    assert main(["label", "--smiles-file", str(smiles_file), "--out", str(out), *FAST]) == 0
    assert read_structures(out)[0].get_chemical_formula() == "CH4"
    out2 = tmp_path / "b.extxyz"
    assert (
        main(
            ["label", "--structure", "H2O", "--out", str(out2), "--sampler", "normal-modes", *FAST]
        )
        == 0
    )
    assert read_structures(out2)[0].info["sampler"] == "normal-modes"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--smiles-file", "no_such_file.txt"], "no such SMILES file"),
        (["--smiles", "C1CC"], "invalid SMILES"),
        (["--structure", "missing_dir/mol.xyz"], "no such structure file"),
        (["--structure", "not-a-molecule"], "not an existing file"),
        (["--smiles", "O", "--frames", "0"], "--frames must be >= 1"),
    ],
)
def test_label_bad_input_exit_2(tmp_path, capsys, arguments, message):
    out = tmp_path / "x.extxyz"
    assert main(["label", *arguments, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
