"""``pynq-cv info``: what pynq_cv would use here, and why; the versions around it."""

from __future__ import annotations

import argparse
import json
import platform
import warnings
from importlib import metadata

import cv2
import numpy as np

import pynq_cv
from pynq_cv.backends.board import find_bitstream
from pynq_cv.cli.common import backend_options, checked_backend


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    return {
        "pynq_cv": pynq_cv.__version__,
        "pynq": _version("pynq"),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": f"{platform.python_version()} ({platform.machine()})",
    }


def _wxh(size: dict[str, int]) -> str:
    return f"{size['width']}x{size['height']}"


def cmd_info(args: argparse.Namespace) -> int:
    backend = checked_backend(args)
    resizer = pynq_cv.use_backend(backend, **backend_options(args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unusable backend shows in "why"
        info = resizer.info()
    found, how = find_bitstream(getattr(args, "bitstream", None))
    report = dict(info)
    report["bitstream_search"] = {"path": str(found) if found else None, "how": how}
    report["versions"] = versions()
    pynq_cv.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"backend          {info['backend']}")
    print(f"why              {info['why']}")
    if "overlay" in info:
        print(f"board            {info['board']}")
        print(f"overlay          {info['overlay']} ({info['build']} build)")
        print(f"descriptor       {info['descriptor']}")
        print(f"bitstream        {info['bitstream']} ({info['bitstream_origin']})")
    print(f"bitstream search {found if found else '-'}: {how}")
    if "envelope" in info:
        env = info["envelope"]
        print("envelope (what the PL takes; the rest runs cv2.resize)")
        print(f"  pixels         {env['dtype']} x {env['channels']} channels")
        print(f"  interpolation  {', '.join(env['interpolations'])}")
        print(f"  input          at most {_wxh(env['max_in'])} (WxH), "
              f"at least {env['min_in_rows']} rows")
        print(f"  output         at most {_wxh(env['max_out'])} (WxH)")
        down = env["max_downscale"]
        print(f"  downscale      {'not limited' if down is None else f'at most {down}x'}")
        print(f"  bytes          in and out multiples of {env['byte_multiple']}, "
              f"at most {env['max_transfer_bytes']:,} per DMA transfer")
    if "pool" in info:
        pool = info["pool"]
        print(f"pool             budget {pool['budget_bytes'] / 2**20:.0f} MiB, "
              f"{pool['buffers']} buffers live ({pool['live_bytes'] / 2**20:.1f} MiB)")
        print(f"breaker          {info['breaker']}")
    if "costs" in info:
        print(f"policy           {info['policy']}")
        print(f"costs            {info['costs_from']}")
        for name, c in info["costs"].items():
            print(f"  {name:<28} {c['value']:<10.4g} {c['unit']:<6} {c['origin']}: {c['source']}")
    print("versions")
    for name, version in report["versions"].items():
        print(f"  {name:<14} {version}")
    return 0
