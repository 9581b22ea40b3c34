"""Every fallback reason the code can give, and every stats()/info() key, is documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

import pynq_cv
from pynq_cv import planner
from pynq_cv.reasons import FALLBACK_REASONS, FAULTS, describe

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def returned_strings(path: Path, function: str) -> set[str]:
    """String constants a function returns directly (its reasons)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return {
                ret.value.value for ret in ast.walk(node)
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Constant)
                and isinstance(ret.value.value, str)
            }
    raise AssertionError(f"{function} not found in {path}")


def code_reasons() -> set[str]:
    reasons = returned_strings(ROOT / "pynq_cv" / "frame.py", "_plan")
    reasons |= returned_strings(ROOT / "pynq_cv" / "frame.py", "_admit")
    reasons |= returned_strings(ROOT / "pynq_cv" / "envelope.py", "size_reason")
    reasons |= set(planner.REASONS.values())
    source = "\n".join(p.read_text() for p in (ROOT / "pynq_cv").rglob("*.py"))
    reasons |= set(re.findall(r'off_reason = "([a-z_]+)"', source))
    reasons |= set(re.findall(r'reason="([a-z_]+)"', source))
    return reasons


def test_every_reason_in_the_code_has_words_and_a_readme_row():
    reasons = code_reasons()
    assert {"interpolation", "dma_length", "cpu_faster", "backend_cpu", "pl_in_use"} <= reasons
    assert reasons <= set(FALLBACK_REASONS), reasons - set(FALLBACK_REASONS)
    for reason in reasons:
        assert f"`{reason}`" in README, reason


def test_every_fault_kind_has_words_and_is_in_the_readme():
    source = (ROOT / "pynq_cv" / "driver.py").read_text()
    kinds = set(re.findall(r'(?:PLFault|self\._fault)\("([a-z_]+)"', source))
    assert {"dma_error", "timeout", "short_transfer", "busy"} <= kinds
    assert kinds <= set(FAULTS)
    for kind in FAULTS:
        assert f"`{kind}`" in README, kind
        assert describe(f"fault_{kind}").startswith("a PL fault: ")


def test_every_stats_and_info_key_is_in_the_readme():
    pynq_cv.use_backend("emulator")
    pynq_cv.resize(np.zeros((48, 64, 3), np.uint8), (32, 24))
    stats, info = pynq_cv.stats(), pynq_cv.info()
    keys = set(stats) | set(stats["compare"]) | set(info) | set(info["envelope"])
    keys |= set(info["pool"])
    missing = sorted(k for k in keys if f"`{k}`" not in README)
    assert not missing
