"""Descriptors are validated at load: a bad field is named; a bad third-party descriptor is
skipped with one warning and never breaks other boards; a path that is not a regular file
is refused without being opened."""

from __future__ import annotations

import copy
import json
import os
import threading
import warnings

import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv import descriptors
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.descriptors import DescriptorError, _parse, descriptor_for, load_descriptor

GOOD = json.loads((descriptors._shipped_dir() / "kv260.json").read_text())


def mutated(path: str, value):
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


BAD = [
    ("clock_hz", 0), ("clock_hz", -5), ("clock_hz", "fast"), ("clock_hz", True),
    ("name", ""), ("board", 12), ("board", KeyError), ("bitstream", ""),
    ("ips.dma.base", "zz"), ("ips.dma.base", -1), ("ips.dma.range", 0), ("ips.dma.name", ""),
    ("ips.dma.parameters.c_sg_length_width", 0), ("ips.dma.parameters.c_sg_length_width", "x"),
    ("ips.dma.parameters.c_sg_length_width", KeyError), ("ips.resizer", KeyError),
    ("ips.resizer.parameters", []), ("envelope.max_in", [0, 3840]), ("envelope.max_out", "big"),
    ("envelope.max_in", [2160]), ("envelope.interpolations", ["INTER_FOO"]),
    ("envelope.interpolations", []), ("envelope.channels", 0), ("envelope.dtype", "float32"),
    ("envelope.max_downscale", 0), ("envelope.max_downscale", "x"), ("envelope", KeyError),
    ("envelope", []), ("ips", KeyError), ("ips", "dma"),
]


@pytest.mark.parametrize("field, value", BAD, ids=[f"{f}={v!r}" for f, v in BAD])
def test_a_bad_field_is_refused_at_load_naming_it(field, value):
    with pytest.raises(DescriptorError) as info:
        _parse(mutated(field, value), "test.json")
    assert f"field {field!r}" in str(info.value)


def test_a_non_object_descriptor_is_refused():
    for data in ([], "x", None, 3):
        with pytest.raises(DescriptorError, match="JSON object"):
            _parse(data, "test.json")


class FakeEntryPoint:
    def __init__(self, name, target):
        self.name = name
        self._target = target

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


@pytest.fixture
def entry_points(monkeypatch):
    """Install fake ``pynq_cv.overlays`` entry points (other groups: none)."""
    monkeypatch.setattr(descriptors, "_skipped", set())

    def install(*eps):
        def fake(group=None, **_):
            return list(eps) if group == descriptors.ENTRY_POINT_GROUP else []

        monkeypatch.setattr(descriptors.metadata, "entry_points", fake)

    return install


def test_bad_third_party_descriptors_are_skipped_with_one_warning_each(entry_points):
    good = mutated("board", "Fake-Board")
    entry_points(
        FakeEntryPoint("good", good),
        FakeEntryPoint("zero_clock", mutated("clock_hz", 0)),
        FakeEntryPoint("missing_module", ModuleNotFoundError("No module named 'gone'")),
        FakeEntryPoint("not_a_path", 42),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = descriptors.available_descriptors()
        descriptors.available_descriptors()  # once per entry point, not per lookup
    assert "Fake-Board" in found and "Pynq-Z2" in found
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3, messages
    assert any("zero_clock" in m and "clock_hz" in m for m in messages)
    assert any("missing_module" in m and "gone" in m for m in messages)
    assert any("not_a_path" in m for m in messages)


def test_a_failing_entry_point_never_breaks_frames_on_other_boards(entry_points):
    entry_points(FakeEntryPoint("broken", ImportError("boom")),
                 FakeEntryPoint("div0", mutated("clock_hz", 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert descriptor_for("KV260").board == "KV260"
        with pynq_cv.Resizer("emulator", board="Pynq-Z2") as rz:
            src = frame(40, 60)
            np.testing.assert_array_equal(rz.resize(src, (30, 20)), resize_exact(src, 20, 30))
            assert rz.stats.snapshot()["pl"] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "descriptor.json"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            load_descriptor(fifo)
        except DescriptorError as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "load_descriptor opened the FIFO and hangs"
    assert outcome and "not a regular file" in outcome[0]
