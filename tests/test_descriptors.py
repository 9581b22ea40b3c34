"""Overlay descriptors: every shipped board loads, and a loaded overlay that differs is named."""

from __future__ import annotations

import copy

import pytest

from pynq_cv.descriptors import (
    DescriptorError,
    available_descriptors,
    descriptor_for,
    ip_dict_mismatches,
    load_descriptor,
    loaded_length_width,
)
from pynq_cv.envelope import Envelope

BOARDS = ["Pynq-Z1", "Pynq-Z2", "Ultra96", "ZCU104", "Pynq-ZU", "KV260", "KR260"]


def test_every_supported_board_has_a_descriptor_with_its_builds_limits():
    known = available_descriptors()
    assert sorted(known) == sorted(BOARDS)
    for name, desc in known.items():
        env = Envelope.from_descriptor(desc)
        assert env.max_in == (2160, 3840)
        if desc.build == "2020":
            assert env.max_out == (1080, 1920), name
        else:
            assert desc.build == "2021" and env.max_out == (2160, 3840), name
        assert ip_dict_mismatches(desc, desc.ip_dict()) == []
        zynq7 = name in ("Pynq-Z1", "Pynq-Z2")
        assert desc.dma.base == (0x40400000 if zynq7 else 0xA0000000)
        assert desc.resizer.base == (0x43C00000 if zynq7 else 0xA0010000)


def test_board_names_are_case_insensitive_and_unknown_ones_list_the_known():
    assert descriptor_for("pynq-z2").board == "Pynq-Z2"
    with pytest.raises(DescriptorError, match="known"):
        descriptor_for("Zybo")


def test_a_loaded_overlay_that_differs_from_its_descriptor_is_named():
    desc = descriptor_for("Pynq-Z2")
    ip_dict = copy.deepcopy(desc.ip_dict())
    ip_dict["axi_dma_0"]["phys_addr"] = 0x40410000
    del ip_dict["resize_accel_0"]
    problems = ip_dict_mismatches(desc, ip_dict)
    assert any("axi_dma_0 is at 0x40410000" in p for p in problems)
    assert any("'resize_accel_0' is not in the overlay" in p for p in problems)


def test_the_dma_length_of_the_loaded_overlay_wins_over_the_descriptor():
    desc = descriptor_for("Pynq-Z2")  # 26 bits (the build scripts since 78d0a10)
    assert Envelope.from_descriptor(desc).size_reason(2160, 3840, 1080, 1920) is None
    ip_dict = copy.deepcopy(desc.ip_dict())
    ip_dict["axi_dma_0"]["parameters"]["c_sg_length_width"] = "23"  # the 2019.1 .hwh
    width = loaded_length_width(desc, ip_dict)
    assert width == 23
    env = Envelope.from_descriptor(desc, width)  # a 4K frame does not fit one transfer
    assert env.size_reason(2160, 3840, 1080, 1920) == "dma_length"


def test_the_2020_build_descriptors_give_the_dma_26_bits():
    """PYNQ-HelloWorld 78d0a10 set c_sg_length_width 26 in all four boards' scripts."""
    for board in ("Pynq-Z1", "Pynq-Z2", "Ultra96", "ZCU104"):
        desc = descriptor_for(board)
        assert desc.build == "2020" and desc.dma_length_width == 26
        assert Envelope.from_descriptor(desc).size_reason(2160, 3840, 1080, 1920) is None


def test_a_broken_descriptor_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x"}')
    with pytest.raises(DescriptorError, match="missing or bad field"):
        load_descriptor(path)
    with pytest.raises(DescriptorError, match="cannot read"):
        load_descriptor(tmp_path / "missing.json")
