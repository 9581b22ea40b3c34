"""What a new user meets first: the sdist, the license, typing, the board install pins."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tarfile
import typing
from pathlib import Path

import numpy as np

import pynq_cv

ROOT = Path(__file__).resolve().parents[1]


def _source_files(folder: str) -> set[str]:
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".hypothesis" not in p.parts
        and p.suffix != ".pyc"
    }


def test_sdist_holds_the_tests_their_data_examples_benchmarks_and_license(tmp_path):
    built = subprocess.run(
        [sys.executable, "-c",
         "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))",
         str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert built.returncode == 0, built.stderr
    name = built.stdout.strip().splitlines()[-1]
    with tarfile.open(tmp_path / name) as sdist:
        top = name.removesuffix(".tar.gz") + "/"
        shipped = {m.name.removeprefix(top) for m in sdist.getmembers() if m.isfile()}
        pkg_info = sdist.extractfile(top + "PKG-INFO").read().decode()
    for folder in ("tests", "examples", "benchmarks", "constraints"):
        missing = _source_files(folder) - shipped
        assert not missing, f"not in the sdist: {sorted(missing)}"
    assert {"tests/conftest.py", "tests/data/ip-golden.json", "LICENSE", "README.md",
            "pynq_cv/py.typed", "constraints/board.txt"} <= shipped
    assert "License-Expression: BSD-3-Clause" in pkg_info
    assert "License-File: LICENSE" in pkg_info
    assert "Project-URL:" in pkg_info and "Classifier: Typing :: Typed" in pkg_info


def test_license_is_the_bsd_3_clause_text():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "pynq_cv developers" in text
    assert "Neither the name of the copyright holder" in text


# -- typing -----------------------------------------------------------------------------------


def test_resize_is_annotated_to_return_an_array_not_a_tuple():
    hints = typing.get_type_hints(pynq_cv.resize)
    assert hints["return"] is np.ndarray
    assert "tuple" not in str(inspect.signature(pynq_cv.resize))


def test_package_is_marked_typed_for_type_checkers():
    assert (Path(pynq_cv.__file__).parent / "py.typed").is_file()


# -- the board extra --------------------------------------------------------------------------


def test_board_constraints_pin_the_board_images_stack_and_ci_uses_them():
    pins = {
        line.split("#", 1)[0].strip()
        for line in (ROOT / "constraints" / "board.txt").read_text().splitlines()
    } - {""}
    assert pins == {"pynq==4.0.0", "numpy<2", "opencv-python==4.11.0.86", "pycparser<3"}
    assert "-c constraints/board.txt" in (ROOT / "README.md").read_text()
    assert "constraints/board.txt" in (ROOT / ".ci" / "run").read_text()


def test_every_data_directory_of_the_package_is_listed_so_build_keeps_it():
    """`python -m build` warned that `pynq_cv.overlays.costs` "would be ignored": a data
    directory under a package must be listed as a package of its own."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "pyproject.toml").read_text()
    listed = set(re.findall(r'^\s+"(pynq_cv[\w.]*)",', text, re.M))
    for directory in (root / "overlays").rglob("*"):
        if directory.is_dir() and any(directory.glob("*.json")):
            dotted = "pynq_cv.overlays." + ".".join(directory.relative_to(root / "overlays").parts)
            assert dotted in listed, dotted
            assert f'"{dotted}" = "overlays/' in text
