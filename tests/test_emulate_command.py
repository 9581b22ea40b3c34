"""``pynq-cv emulate`` runs a script or a published notebook folder as ``python`` would run
it: the overlay's files found where the notebook is, the script's status and tracebacks,
its own errors reported as its own. Runs where ``pynq`` imports (skipped elsewhere, except
under ``PYNQ_CV_REQUIRE_PYNQ=1``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import frame, real_pynq
from test_run import ENV, interrupted, write

real_pynq()

from pynq_cv.backends.emulator.arith import resize_exact  # noqa: E402

# The HelloWorld notebook's steps, written here: a relative Overlay("resizer.bit"), an image
# from images/, the sizes, run_kernel (0x81), the result saved beside the notebook.
CELLS = [
    "%matplotlib inline\nimport numpy as np\nfrom pynq import Overlay, allocate\n"
    "resize_design = Overlay('resizer.bit')\n"
    "dma = resize_design.axi_dma_0\nresizer = resize_design.resize_accel_0",
    "image = np.load('images/picture.npy')\nrows, cols = image.shape[:2]\n"
    "in_buffer = allocate(shape=image.shape, dtype=np.uint8)\n"
    "out_buffer = allocate(shape=(rows // 2, cols // 2, 3), dtype=np.uint8)\n"
    "in_buffer[:] = image",
    "for offset, value in ((0x10, rows), (0x18, cols), (0x20, rows // 2), (0x28, cols // 2)):\n"
    "    resizer.write(offset, value)",
    "def run_kernel():\n    dma.sendchannel.transfer(in_buffer)\n"
    "    dma.recvchannel.transfer(out_buffer)\n    resizer.write(0x00, 0x81)\n"
    "    dma.sendchannel.wait()\n    dma.recvchannel.wait()\nrun_kernel()",
    "np.save('resized.npy', np.array(out_buffer))\nprint('resized', out_buffer.shape)",
]


def emulate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pynq_cv", "emulate", *args],
                          capture_output=True, text=True, timeout=180, env=ENV, cwd=cwd)


def notebook_folder(root: Path) -> Path:
    """A folder as published: the notebook, images/, and pynq's .link files (no .bit)."""
    folder = root / "notebooks" / "edge"
    (folder / "images").mkdir(parents=True)
    np.save(folder / "images" / "picture.npy", frame(96, 128, seed=5))
    for link in ("resizer.bit.link", "resizer.hwh.link"):
        (folder / link).write_text(json.dumps({"url": "https://example.invalid/" + link}))
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": code.splitlines(keepends=True)} for code in CELLS]
    (folder / "resizer_pl.ipynb").write_text(json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return folder


def test_a_published_notebook_folder_runs_as_is(tmp_path):
    folder = notebook_folder(tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    done = emulate(str(folder / "resizer_pl.ipynb"), cwd=tmp_path)  # run from elsewhere
    assert done.returncode == 0, done.stderr
    assert done.stdout == "resized (48, 64, 3)\n"
    expected = resize_exact(frame(96, 128, seed=5), 48, 64)
    assert np.array_equal(np.load(folder / "resized.npy"), expected)
    # the overlay's files written for the run are gone; the folder is as published (+ output)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*before, "resized.npy"])


def test_directory_names_where_the_overlay_is_found(tmp_path):
    folder = notebook_folder(tmp_path)
    overlays = tmp_path / "overlays"
    overlays.mkdir()
    write(tmp_path, "attach.py", """\
        import os, sys, pynq
        ol = pynq.Overlay(os.path.join(sys.argv[1], "resizer.bit"))
        print(sorted(os.listdir(sys.argv[1])), "resize_accel_0" in ol.ip_dict)
        """)
    done = emulate("--directory", str(overlays), "attach.py", str(overlays), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "['resizer.bit', 'resizer.hwh'] True\n"
    assert list(overlays.iterdir()) == []  # written for the run, removed after it
    assert not (folder / "resizer.bit").exists()
    missing = emulate("--directory", str(tmp_path / "nope"), "attach.py", ".", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_the_scripts_own_import_error_is_its_own(tmp_path):
    write(tmp_path, "imp.py", "import pynq\nprint('pynq ok', flush=True)\n"
                              "import a_module_this_script_lacks\n")
    alone = subprocess.run([sys.executable, "imp.py"], capture_output=True, text=True,
                           timeout=120, env=ENV, cwd=tmp_path)
    done = emulate("imp.py", cwd=tmp_path)
    assert done.returncode == alone.returncode == 1
    assert done.stdout == alone.stdout == "pynq ok\n"
    assert done.stderr == alone.stderr and "pynq is needed" not in done.stderr
    assert done.stderr.startswith("Traceback") and "ModuleNotFoundError" in done.stderr


@pytest.mark.parametrize("ending, status", [("sys.exit(3)", 3), ("raise ValueError('x')", 1)])
def test_a_script_with_pl_frames_ends_at_once_with_its_status(tmp_path, ending, status):
    write(tmp_path, "big.py", f"""\
        import sys, cv2, numpy as np, pynq_cv
        pynq_cv.patch()
        frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
        small = cv2.resize(frame, (960, 540))
        print(small.shape, pynq_cv.stats()["pl"], flush=True)
        {ending}
        """)
    done = emulate("big.py", cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert done.stdout == "(540, 960, 3) 1\n"
    if status == 1:  # the script's frame only, as Python shows it
        assert re.findall(r'File "([^"]+)"', done.stderr) == [str(tmp_path / "big.py")]
    assert os.listdir(tmp_path) == ["big.py"]


def test_one_ctrl_c_ends_an_emulated_loop_as_python_ends(tmp_path):
    write(tmp_path, "loop.py", """\
        import numpy as np, pynq
        from pynq import allocate
        ol = pynq.Overlay(pynq.PL.bitfile_name)
        src = allocate(shape=(540, 960, 3), dtype=np.uint8)
        dst = allocate(shape=(1080, 1920, 3), dtype=np.uint8)
        for offset, value in ((0x10, 540), (0x18, 960), (0x20, 1080), (0x28, 1920)):
            ol.resize_accel_0.write(offset, value)
        print("ready", flush=True)
        while True:
            ol.axi_dma_0.sendchannel.transfer(src)
            ol.axi_dma_0.recvchannel.transfer(dst)
            ol.resize_accel_0.write(0x00, 0x01)
            ol.axi_dma_0.sendchannel.wait()
            ol.axi_dma_0.recvchannel.wait()
        """)
    status, _, err = interrupted("-m", "pynq_cv", "emulate", "loop.py", cwd=tmp_path)
    alone, _, _ = interrupted("-c", "import time; print('ready', flush=True); time.sleep(60)",
                              cwd=tmp_path)
    assert status == alone != 0, err  # killed by SIGINT, as Python is
    assert err.count("Traceback") == 1 and err.rstrip().endswith("KeyboardInterrupt"), err
    frames = re.findall(r'File "([^"]+)"', err)
    assert frames and frames[0] == str(tmp_path / "loop.py"), err
