"""``pynq-cv bench``: run the benchmarks of a source checkout and print their rows."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from pynq_cv.cli.common import CliError


def benchmarks_dir() -> Path:
    """``benchmarks/`` of a source checkout: the one this package runs from (editable
    install), else the current directory's (``pip install .`` then ``pynq-cv bench`` in
    the repo); the benchmarks are not installed with the package."""
    beside = Path(__file__).resolve().parents[2] / "benchmarks"
    here = Path.cwd() / "benchmarks"
    return beside if beside.is_dir() or not here.is_dir() else here


def _load_module(path: Path) -> Any:
    name = f"_pynq_cv_bench_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1 or size == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as aligned columns (keys in order of first appearance)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    if "case" in columns:  # the row's name first
        columns.insert(0, columns.pop(columns.index("case")))
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 or not _numeric(v) else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cmd_bench(args: argparse.Namespace) -> int:
    where = Path(args.dir) if args.dir else benchmarks_dir()
    scripts = sorted(where.glob("bench_*.py")) if where.is_dir() else []
    if not scripts:
        raise CliError(
            f"no benchmarks found in {where}: they live in the source repository's "
            "benchmarks/ (pynq_cv installed without its repository?); pass --dir", 2
        )
    by_name = {p.stem.removeprefix("bench_"): p for p in scripts}
    chosen = []
    for name in args.names:
        key = name.removeprefix("bench_").removesuffix(".py")
        if key not in by_name:
            raise CliError(f"no benchmark {name!r}; available: {', '.join(sorted(by_name))}")
        chosen.append(by_name[key])
    failed = 0
    for path in chosen or scripts:
        print(f"== {path.stem} ({'short' if args.short else 'full'})", flush=True)
        started = time.perf_counter()
        try:
            module = _load_module(path)
            if not callable(getattr(module, "run", None)):
                print(f"skipped: {path.name} has no run(short) function\n")
                continue
            rows = module.run(args.short)
        except Exception as exc:  # noqa: BLE001 -- one broken benchmark must not hide the rest
            failed += 1
            last = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"failed: {type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})")
            continue
        print(format_table(list(rows)) if rows else "(no rows)")
        print(f"({time.perf_counter() - started:.1f} s)\n", flush=True)
    return 1 if failed else 0
