"""A ``.hwh`` for the emulated resizer overlay, generated from its descriptor.

pynq learns an overlay from the Vivado hardware handoff (``.hwh``) beside its ``.bit``: the
IPs the PS can address, their parameters and register maps, the PL clocks. The emulator
needs one for ``pynq.Overlay`` to work on it, and none may be copied from a third party,
so this module writes one: the processing system (Zynq-7000 or Zynq UltraScale+, told apart
by where the descriptor puts the IPs), the AXI DMA with the descriptor's parameters and its
simple-mode registers (PG021), and the resizer with the HLS ``s_axilite`` registers. Only
what pynq's parsers read (2.7's ``hwh_parser`` and pynqmetadata on 3.x/4.0) is written; the
stream wiring and the width converters are left out.

``write_overlay(descriptor, directory)`` puts a placeholder ``resizer.bit`` and the
generated ``resizer.hwh`` side by side, where ``pynq.Overlay`` looks for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from ...descriptors import OverlayDescriptor

# field: (name, bit offset, bit width, access); a register: (name, offset, access, fields)
Field = tuple[str, int, int, str]
RW, RO, WO = "read-write", "read-only", "write-only"


def _dma_channel(
    prefix: str, base: int, address: str, field: str, length_width: int
) -> list[tuple[str, int, str, list]]:
    control = [
        ("RS", 0, 1, RW), ("Reset", 2, 1, RW), ("Keyhole", 3, 1, RW),
        ("Cyclic_BD_Enable", 4, 1, RW), ("IOC_IrqEn", 12, 1, RW), ("Dly_IrqEn", 13, 1, RW),
        ("Err_IrqEn", 14, 1, RW), ("IRQThreshold", 16, 8, RW), ("IRQDelay", 24, 8, RW),
    ]
    status = [
        ("Halted", 0, 1, RO), ("Idle", 1, 1, RO), ("SGIncld", 3, 1, RO),
        ("DMAIntErr", 4, 1, RO), ("DMASlvErr", 5, 1, RO), ("DMADecErr", 6, 1, RO),
        ("SGIntErr", 8, 1, RO), ("SGSlvErr", 9, 1, RO), ("SGDecErr", 10, 1, RO),
        ("IOC_Irq", 12, 1, RW), ("Dly_Irq", 13, 1, RW), ("Err_Irq", 14, 1, RW),
        ("IRQThresholdSts", 16, 8, RO), ("IRQDelaySts", 24, 8, RO),
    ]
    return [
        (f"{prefix}_DMACR", base + 0x00, RW, control),
        (f"{prefix}_DMASR", base + 0x04, RW, status),
        # the scatter-gather pointers: listed by every AXI DMA .hwh, unused in simple mode
        (f"{prefix}_CURDESC", base + 0x08, RW, [("Current_Descriptor_Pointer", 6, 26, RW)]),
        (f"{prefix}_CURDESC_MSB", base + 0x0C, RW,
         [("Current_Descriptor_Pointer", 0, 32, RW)]),
        (f"{prefix}_TAILDESC", base + 0x10, RW, [("Tail_Descriptor_Pointer", 6, 26, RW)]),
        (f"{prefix}_TAILDESC_MSB", base + 0x14, RW, [("Tail_Descriptor_Pointer", 0, 32, RW)]),
        (f"{prefix}_{address}", base + 0x18, RW, [(field, 0, 32, RW)]),
        (f"{prefix}_{address}_MSB", base + 0x1C, RW, [(field, 0, 32, RW)]),
        (f"{prefix}_LENGTH", base + 0x28, RW, [("Length", 0, length_width, RW)]),
    ]


def dma_registers(length_width: int) -> list[tuple[str, int, str, list]]:
    """The register map of PG021 as an AXI DMA ``.hwh`` lists it (simple mode uses the
    control, status, address and LENGTH registers; the LENGTH field as wide as configured)."""
    sg_ctl = ("SG_CTL", 0x2C, RW, [("SG_CACHE", 0, 4, RW), ("SG_USER", 8, 4, RW)])
    return (
        _dma_channel("MM2S", 0x00, "SA", "Source_Address", length_width)
        + [sg_ctl]
        + _dma_channel("S2MM", 0x30, "DA", "Destination_Address", length_width)
    )


# The HLS ap_ctrl_hs block and the four scalar arguments (write-only in every HLS .hwh)
RESIZER_REGISTERS = [
    ("CTRL", 0x00, RW, [
        ("AP_START", 0, 1, RW), ("AP_DONE", 1, 1, RO), ("AP_IDLE", 2, 1, RO),
        ("AP_READY", 3, 1, RO), ("RESERVED_1", 4, 3, RO), ("AUTO_RESTART", 7, 1, RW),
        ("RESERVED_2", 8, 24, RO),
    ]),
    ("GIER", 0x04, RW, [("Enable", 0, 1, RW), ("RESERVED", 1, 31, RO)]),
    ("IP_IER", 0x08, RW, [
        ("CHAN0_INT_EN", 0, 1, RW), ("CHAN1_INT_EN", 1, 1, RW), ("RESERVED", 2, 30, RO),
    ]),
    ("IP_ISR", 0x0C, RW, [
        ("CHAN0_INT_ST", 0, 1, RO), ("CHAN1_INT_ST", 1, 1, RO), ("RESERVED", 2, 30, RO),
    ]),
] + [
    (name, offset, WO, [(name, 0, 32, WO)])
    for name, offset in (("src_rows", 0x10), ("src_cols", 0x18),
                         ("dst_rows", 0x20), ("dst_cols", 0x28))
]


class _PS:
    """What differs between the two processing systems the HelloWorld boards carry."""

    def __init__(self, descriptor: OverlayDescriptor) -> None:
        mhz = descriptor.clock_hz / 1e6
        if descriptor.dma.base < 0x8000_0000:  # M_AXI_GP0 window: Zynq-7000
            self.arch, self.device, self.package = "zynq", "7z020", "clg400"
            self.modtype, self.vlnv = "processing_system7", "xilinx.com:ip:processing_system7:5.5"
            self.master, self.slave = "M_AXI_GP0", "S_AXI_HP0"
            self.ddr = (0x0000_0000, 0x1FFF_FFFF)
            div0, div1 = _divisors(1000.0, mhz)  # IO PLL at 1 GHz
            self.parameters = {}
            for i in range(4):
                on = i == 0
                self.parameters[f"PCW_FPGA_FCLK{i}_ENABLE"] = "1" if on else "0"
                self.parameters[f"PCW_FCLK{i}_PERIPHERAL_DIVISOR0"] = str(div0 if on else 1)
                self.parameters[f"PCW_FCLK{i}_PERIPHERAL_DIVISOR1"] = str(div1 if on else 1)
                self.parameters[f"PCW_FPGA{i}_PERIPHERAL_FREQMHZ"] = f"{mhz:g}" if on else "0"
                self.parameters[f"PCW_FCLK{i}_PERIPHERAL_CLKSRC"] = "IO PLL"
        else:  # M_AXI_HPM0_FPD window: Zynq UltraScale+
            self.arch, self.device, self.package = "zynquplus", "xck26", "sfvc784"
            self.modtype, self.vlnv = "zynq_ultra_ps_e", "xilinx.com:ip:zynq_ultra_ps_e:3.3"
            self.master, self.slave = "M_AXI_HPM0_FPD", "S_AXI_HP0_FPD"
            self.ddr = (0x0000_0000, 0x7FFF_FFFF)
            div0, div1 = _divisors(1500.0, mhz)  # IO PLL at 1.5 GHz
            self.parameters = {}
            for i in range(4):
                on = i == 0
                self.parameters[f"PSU__FPGA_PL{i}_ENABLE"] = "1" if on else "0"
                self.parameters[f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR0"] = str(div0 if on else 4)
                self.parameters[f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR1"] = str(div1 if on else 1)
                self.parameters[f"PSU__CRL_APB__PL{i}_REF_CTRL__FREQMHZ"] = f"{mhz:g}"
                self.parameters[f"PSU__CRL_APB__PL{i}_REF_CTRL__SRCSEL"] = "IOPLL"
                if on:
                    self.parameters[f"PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ"] = f"{mhz:g}"


def _divisors(source_mhz: float, target_mhz: float) -> tuple[int, int]:
    """Two 6-bit dividers bringing the PLL nearest to the PL clock (what Vivado picks)."""
    best = min(
        ((d0, d1) for d0 in range(1, 64) for d1 in range(1, 64)),
        key=lambda d: (abs(source_mhz / (d[0] * d[1]) - target_mhz), d[1], d[0]),
    )
    return best


def _sub(parent: ET.Element, tag: str, **attrs: Any) -> ET.Element:
    return ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})


def _parameters(module: ET.Element, params: dict[str, Any]) -> None:
    holder = _sub(module, "PARAMETERS")
    for name, value in params.items():
        _sub(holder, "PARAMETER", NAME=name, VALUE=value)


def _property(parent: ET.Element, name: str, value: Any) -> None:
    _sub(parent, "PROPERTY", NAME=name, VALUE=value)


def _registers(module: ET.Element, interface: str, span: int, registers: list) -> None:
    block = _sub(
        _sub(module, "ADDRESSBLOCKS"), "ADDRESSBLOCK",
        ACCESS=RW, INTERFACE=interface, NAME="Reg", RANGE=span, USAGE="register",
    )
    holder = _sub(block, "REGISTERS")
    for name, offset, access, fields in registers:
        register = _sub(holder, "REGISTER", NAME=name)
        _property(register, "DESCRIPTION", f"{name} (generated by pynq_cv)")
        _property(register, "ADDRESS_OFFSET", offset)
        _property(register, "SIZE", 32)
        _property(register, "ACCESS", access)
        _property(register, "IS_ENABLED", "true")
        _property(register, "RESET_VALUE", 0)
        field_holder = _sub(register, "FIELDS")
        for fname, bit, width, faccess in fields:
            field = _sub(field_holder, "FIELD", NAME=fname)
            _property(field, "DESCRIPTION", fname)
            _property(field, "ADDRESS_OFFSET", bit)
            _property(field, "ACCESS", faccess)
            _property(field, "BIT_OFFSET", bit)
            _property(field, "BIT_WIDTH", width)


def _module(parent: ET.Element, name: str, vlnv: str, modtype: str) -> ET.Element:
    return _sub(
        parent, "MODULE", FULLNAME=f"/{name}", HWVERSION=vlnv.rsplit(":", 1)[1],
        INSTANCE=name, IPTYPE="PERIPHERAL", IS_ENABLE=1, MODCLASS="PERIPHERAL",
        MODTYPE=modtype, VLNV=vlnv,
    )


def _bus(parent: ET.Element, name: str, kind: str, vlnv: str, **attrs: Any) -> None:
    _sub(parent, "BUSINTERFACE", BUSNAME=f"bus_{name}", NAME=name, TYPE=kind, VLNV=vlnv, **attrs)


def _memrange(parent: ET.Element, master: str, instance: str, slave: str, block: str,
              base: int, high: int, memtype: str) -> None:
    _sub(
        parent, "MEMRANGE", ADDRESSBLOCK=block, BASENAME="C_BASEADDR", BASEVALUE=f"0x{base:08X}",
        HIGHNAME="C_HIGHADDR", HIGHVALUE=f"0x{high:08X}", INSTANCE=instance, IS_DATA="TRUE",
        IS_INSTRUCTION="TRUE", MASTERBUSINTERFACE=master, MEMTYPE=memtype,
        SLAVEBUSINTERFACE=slave,
    )


AXIMM, AXIS = "xilinx.com:interface:aximm:1.0", "xilinx.com:interface:axis:1.0"


def generate_hwh(descriptor: OverlayDescriptor) -> str:
    """The ``.hwh`` text of ``descriptor``'s overlay (what pynq's parsers need of it)."""
    ps = _PS(descriptor)
    dma, resizer = descriptor.dma, descriptor.resizer
    root = ET.Element("EDKSYSTEM", EDWVERSION="1.2", TIMESTAMP="generated",
                      VIVADOVERSION="pynq_cv")
    _sub(root, "SYSTEMINFO", ARCH=ps.arch, DEVICE=ps.device, NAME="resizer",
         PACKAGE=ps.package, SPEEDGRADE="-1")
    _sub(root, "EXTERNALPORTS")
    _sub(root, "EXTERNALINTERFACES")
    modules = _sub(root, "MODULES")

    # The AXI DMA: parameters as Vivado writes them, upper and lower case
    module = _module(modules, dma.name, dma.type or "xilinx.com:ip:axi_dma:7.1", "axi_dma")
    _registers(module, "S_AXI_LITE", dma.range, dma_registers(descriptor.dma_length_width))
    params: dict[str, Any] = {}
    for key, value in dma.parameters.items():
        params[key.upper()] = value
    for key, value in dma.parameters.items():
        params[key.lower()] = value
    _parameters(module, params)
    _sub(module, "PORTS")
    buses = _sub(module, "BUSINTERFACES")
    _bus(buses, "S_AXI_LITE", "SLAVE", AXIMM, DATAWIDTH=32)
    _bus(buses, "M_AXI_MM2S", "MASTER", AXIMM, DATAWIDTH=32)
    _bus(buses, "M_AXI_S2MM", "MASTER", AXIMM, DATAWIDTH=32)
    _bus(buses, "M_AXIS_MM2S", "INITIATOR", AXIS)
    _bus(buses, "S_AXIS_S2MM", "TARGET", AXIS)
    memory_map = _sub(module, "MEMORYMAP")
    for master in ("M_AXI_MM2S", "M_AXI_S2MM"):
        _memrange(memory_map, master, "ps", ps.slave, "HP0_DDR_LOWOCM", *ps.ddr, "MEMORY")

    # The resizer (HLS resize_accel)
    module = _module(modules, resizer.name,
                     resizer.type or "xilinx.com:hls:resize_accel:1.0", "resize_accel")
    _registers(module, "s_axi_AXILiteS", resizer.range, RESIZER_REGISTERS)
    _parameters(module, {
        "C_S_AXI_AXILITES_ADDR_WIDTH": 6, "C_S_AXI_AXILITES_DATA_WIDTH": 32,
        "clk_period": f"{1e9 / descriptor.clock_hz:g}",
        **{str(k): v for k, v in resizer.parameters.items()},
    })
    _sub(module, "PORTS")
    buses = _sub(module, "BUSINTERFACES")
    _bus(buses, "s_axi_AXILiteS", "SLAVE", AXIMM, DATAWIDTH=32)
    _bus(buses, "src", "SLAVE", AXIS)
    _bus(buses, "dst", "MASTER", AXIS)

    # The processing system: the PL clocks, and what its master port reaches
    module = _sub(modules, "MODULE", FULLNAME="/ps", INSTANCE="ps", IPTYPE="PERIPHERAL",
                  IS_ENABLE=1, MODCLASS="PROCESSOR", MODTYPE=ps.modtype, VLNV=ps.vlnv)
    _parameters(module, ps.parameters)
    _sub(module, "PORTS")
    buses = _sub(module, "BUSINTERFACES")
    _bus(buses, ps.master, "MASTER", AXIMM, DATAWIDTH=32)
    _bus(buses, ps.slave, "SLAVE", AXIMM, DATAWIDTH=64)
    memory_map = _sub(module, "MEMORYMAP")
    for ip, interface in ((dma, "S_AXI_LITE"), (resizer, "s_axi_AXILiteS")):
        _memrange(memory_map, ps.master, ip.name, interface, "Reg",
                  ip.base, ip.base + ip.range - 1, "REGISTER")

    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n' + ET.tostring(
        root, encoding="unicode"
    ) + "\n"


def write_overlay(
    descriptor: OverlayDescriptor, directory: str | os.PathLike[str], name: str | None = None
) -> Path:
    """Write ``<name>.bit`` (a placeholder) and ``<name>.hwh`` (generated); return the .bit.

    An existing ``.hwh`` there is left alone: a real one beside the ``.bit`` wins.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = Path(name or descriptor.bitstream).stem
    bit = directory / f"{stem}.bit"
    if not bit.exists():
        bit.write_text(f"pynq_cv emulated bitstream: {descriptor.name}\n")
    hwh = bit.with_suffix(".hwh")
    if not hwh.exists():
        hwh.write_text(generate_hwh(descriptor))
    return bit


def check_hwh(
    path: str | os.PathLike[str], descriptor: OverlayDescriptor,
    parse_hwh: Callable[[str | os.PathLike[str]], Any],
) -> OverlayDescriptor:
    """``descriptor`` where the ``.hwh`` at ``path`` puts its IPs (a user's own build may
    place the DMA and the resizer elsewhere); ``ValueError``, one line naming the file and
    the first mismatch, when it is not the board's resizer overlay (another processing
    system, a missing or different IP) or cannot be read (pynq's own parser runs on it:
    ``parse_hwh``, i.e. ``pynq_device.parse_hwh``, given by the caller -- the emulated
    device builds on this module, not the other way round)."""
    from ...descriptors import ip_dict_mismatches
    from ..board import located

    try:
        info = ET.parse(os.fspath(path)).getroot().find("SYSTEMINFO")
    except (ET.ParseError, OSError) as exc:
        raise ValueError(f"{path}: not a readable .hwh ({exc})") from exc
    arch = info.get("ARCH", "") if info is not None else ""
    expected = _PS(descriptor).arch
    if arch != expected:
        raise ValueError(
            f"{path} is a design for {arch or 'an unknown architecture'}, not for the "
            f"{descriptor.board} ({expected})"
        )
    ip_dict = parse_hwh(path).ip_dict
    placed = located(descriptor, ip_dict)
    problems = ip_dict_mismatches(placed, ip_dict)
    if problems:
        raise ValueError(
            f"{path} is not the {descriptor.board}'s resizer overlay "
            f"({descriptor.name}): {problems[0]}"
        )
    return placed
