"""``pynq-cv doctor``: a board owner's first hour, measured and reported in one run.

Every board number the README gives is modelled from published sources until someone
measures it. The doctor measures what decides the routing -- cv2 at the sizes users resize
to, copies by buffer kind, flush and invalidate (and whether flush reaches the PL at all),
one MMIO access, the PL against the IP's exact arithmetic, pipelined frame rates -- and
hands back one report (``report.md``, ``report.json``, ``routes.png``) to attach to an issue.

Steps run in a fixed order, each with a progress line; an exception in one step is
recorded in its section and the next step runs; Ctrl-C stops at once and the report holds
what was measured so far. Off a board every step runs on the emulator and says so: its
numbers are this host's, never a board's.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import pynq_cv

from . import calibration, coherency, routes
from . import costs as cost_model
from . import machine as machine_facts
from .arith import resize_exact
from .backends.board import PL_LOCK_KEY, emulated_pl, machine_has_pl
from .costs import BoardCosts
from .cv2compat import CV2_RESIZE
from .descriptors import descriptor_for
from .envelope import Envelope
from .pl_lock import holder_of, lock_path
from .planner import resolve_policy
from .watch import difference

logger = logging.getLogger("pynq_cv")

FRAME_1080P = (1080, 1920)
FRAME_4K = (2160, 3840)
# (name, input rows x cols, output rows x cols): the sizes users resize to
CV2_SHAPES = [
    ("1080p -> 960x540", FRAME_1080P, (540, 960)),
    ("1080p -> 1280x720", FRAME_1080P, (720, 1280)),
    ("1080p -> 608x608", FRAME_1080P, (608, 608)),
    ("1080p -> 416x416", FRAME_1080P, (416, 416)),
    ("4K -> 1080p", FRAME_4K, FRAME_1080P),
    ("640x480 -> 320x240", (480, 640), (240, 320)),
]
STREAMS = [CV2_SHAPES[0], CV2_SHAPES[4]]
BUFFER_SIZES = (1920 * 1080 * 3, 960 * 540 * 3)  # 6.22 MB and 1.56 MB
# output widths of the routing picture (16:9 from a 1080p input)
PICTURE_WIDTHS = (160, 320, 480, 640, 800, 960, 1120, 1280, 1440, 1600, 1760, 1920)


@dataclass
class Settings:
    """How much to measure: ``quick`` trades repeats and shapes for time."""

    quick: bool = False
    repeat: int = 5
    stream_frames: int = 24

    @classmethod
    def make(cls, quick: bool) -> Settings:
        return cls(True, 2, 4) if quick else cls()


@dataclass
class Report:
    """What the doctor found so far: the sections of ``report.json``."""

    emulated: bool = True
    environment: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, Any] = field(default_factory=dict)
    coherency: dict[str, Any] = field(default_factory=dict)
    verify: dict[str, Any] = field(default_factory=dict)
    stream: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, Any] = field(default_factory=dict)
    doctor: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "emulated": self.emulated, "environment": self.environment,
            "measurements": self.measurements, "coherency": self.coherency,
            "verify": self.verify, "stream": self.stream, "routes": self.routes,
            "doctor": self.doctor,
        }

    @property
    def failed(self) -> bool:
        """A coherency or verify mismatch (the PL gives wrong pixels on this image), or a
        coherency check the PL's faults left unsettled."""
        return self.coherency.get("ok") is False or bool(self.verify.get("mismatched"))


# -- timing helpers -----------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of ``repeat`` runs after a warm-up run; CPU is the
    process's, so every thread cv2 keeps busy counts."""
    fn()
    best = (float("inf"), 0.0)
    for _ in range(max(repeat, 1)):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best[0]:
            best = (wall, cpu)
    return max(best[0], 1e-9), best[1]


def _random_frame(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (rows, cols, 3), dtype=np.uint8)


# -- the routing map ------------------------------------------------------------------------------


route_rows = routes.rows_for_shapes  # the doctor's map is pynq-cv plan's rows


def route_shapes() -> list[tuple[int, int, int, int]]:
    """The doctor's shapes, then the picture's 16:9 outputs of a 1080p input."""
    shapes = [(*inp, *out) for _, inp, out in CV2_SHAPES]
    for width in PICTURE_WIDTHS:
        sizes = (*FRAME_1080P, width * 9 // 16, width)
        if sizes not in shapes:
            shapes.append(sizes)
    return shapes


# -- the doctor ---------------------------------------------------------------------------------


class Doctor:
    """Runs the steps against one engine (the board, else the emulator) and fills a Report.

    ``backend``/``options``: as ``Resizer`` takes them; ``progress`` gets one line per step."""

    def __init__(
        self, backend: str | None = None, options: dict[str, Any] | None = None,
        quick: bool = False, progress: Callable[[str], None] | None = None,
        policy: str | None = None,
    ) -> None:
        self.backend = backend
        self.options = dict(options or {})
        self.options.pop("policy", None)
        self.policy = resolve_policy(policy)  # the routing map's (the user's engines')
        self.settings = Settings.make(quick)
        self.progress = progress or (lambda line: None)
        # board default: commands (inside emulate() the board is the emulated one)
        self.report = Report(emulated=emulated_pl() or not machine_has_pl())
        self.resizer: pynq_cv.Resizer | None = None
        self.found: dict[str, float] = {}  # measured cost constants, by the model's names
        self.published: BoardCosts | None = None

    # -- the run --------------------------------------------------------------------------

    def steps(self) -> list[tuple[str, str, Callable[[], None]]]:
        return [
            ("environment", "the image: versions, cv2's CPU baseline, CMA, the PL",
             self.step_environment),
            ("cv2", "cv2.resize at the sizes users resize to, 1 thread and default",
             self.step_cv2),
            ("buffers", "copies by buffer kind, flush and invalidate", self.step_buffers),
            ("coherency", "coherency: a known pattern through the PL per buffer kind",
             self.step_coherency),
            ("mmio", "one Python MMIO write and read, one small frame's driver work",
             self.step_mmio),
            ("verify", "the PL against the IP's exact arithmetic (verify's cases)",
             self.step_verify),
            ("stream", "pipelined PL fps vs cv2 fps, 1080p and 4K streams", self.step_stream),
            ("routes", "the routing map with the measured constants", self.step_routes),
        ]

    def run(self) -> Report:
        """Every step in order; returns the report (complete, or up to an interrupt)."""
        report = self.report
        steps = self.steps()
        report.doctor.update(
            version=pynq_cv.__version__, quick=self.settings.quick,
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), seconds={},
            complete=False, interrupted_at=None, errors={},
        )
        start = time.perf_counter()
        name = "start"
        try:
            for number, (name, title, step) in enumerate(steps, 1):
                where = " (EMULATED)" if report.emulated and name != "environment" else ""
                self.progress(f"[{number}/{len(steps)}] {title}{where} ...")
                t0 = time.perf_counter()
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 -- one failed step must not lose the rest
                    report.doctor["errors"][name] = f"{type(exc).__name__}: {exc}"
                    self.progress(f"      {name} failed: {type(exc).__name__}: {exc}")
                    logger.debug("doctor step %s failed", name, exc_info=True)
                seconds = time.perf_counter() - t0
                report.doctor["seconds"][name] = round(seconds, 3)
                self.progress(f"      done in {seconds:.1f} s")
            report.doctor["complete"] = True
        except KeyboardInterrupt:  # Ctrl-C: keep what was measured, in or between steps
            report.doctor["interrupted_at"] = name
            self.progress(f"      interrupted during {name}: writing what was measured")
        finally:
            report.doctor["total_seconds"] = round(time.perf_counter() - start, 3)
            self.close()
        return report

    def close(self) -> None:
        resizer, self.resizer = self.resizer, None
        if resizer is not None:
            resizer.close()

    @property
    def on_board(self) -> bool:
        """Whether the numbers are a real board's (its PL opened through real pynq)."""
        # not a default: names whose numbers these are
        return self.report.environment.get("backend") == "board" and not self.report.emulated

    @property
    def engine(self) -> Any:
        return self.resizer.engine if self.resizer is not None else None

    def _note(self) -> str:
        if self.resizer is not None and self.engine is None:
            return (f"no PL path ({self.report.environment.get('why', '?')}): only cv2.resize "
                    "and this machine's CPU were measured")
        if self.report.emulated:
            return ("EMULATED: no board here; the PL is the board emulator and every time is "
                    "this host's, not a board's")
        return "measured on the board"

    def _section(self, section: dict[str, Any]) -> dict[str, Any]:
        section.update(emulated=self.report.emulated, note=self._note())
        return section

    def _need_engine(self, section: dict[str, Any]) -> Any:
        engine = self.engine
        if engine is None:
            why = self.report.environment.get("why", "no PL")
            section.update(skipped=f"no PL path: {why}")
        return engine

    # -- the steps ------------------------------------------------------------------------

    def step_environment(self) -> None:
        from .cli.info import versions  # pynq-cv info's list: after the cli package loads

        env = self._section(self.report.environment)
        env.update(
            versions=versions(),
            machine=platform.machine(), cpu_count=os.cpu_count(),
            cv2_threads=cv2.getNumThreads(), cv2_cpu=machine_facts.cv2_baseline(),
            cma=machine_facts.cma_from_meminfo(),
        )
        if machine_has_pl():  # board default: pl_lock
            env["pl_lock"] = {"file": str(lock_path(PL_LOCK_KEY)),
                              "holder_before": holder_of(lock_path(PL_LOCK_KEY))}
            env["pl_loaded_before"] = machine_facts.loaded_bitstream()
        else:
            env["pl_lock"] = {"file": None, "holder_before": None,
                              "note": "no PL on this machine, so no PL lock"}
        # calibration={}: the published constants, so measured ones are compared with them
        self.resizer = pynq_cv.Resizer(self.backend, policy="pl", calibration={},
                                       **self.options)
        info = self.resizer.info()
        env.update(backend=info["backend"], why=info["why"])
        env["pl_holder"] = info.get("pl_holder")
        engine = self.engine
        if engine is None:  # nothing will be emulated either: say only what was measured
            self.report.emulated = False
            self._section(env)
            desc = descriptor_for(self.options.get("board"))  # the model's board, for cv2
            self.published = cost_model.for_board(desc.board)
            env.update(board=desc.board, family=self.published.family)
            return
        hw = engine.board
        self.report.emulated = bool(self.resizer.stats.emulated)
        self._section(env)
        env.update(board=info["board"], overlay=info["overlay"], build=info["build"],
                   bitstream=info["bitstream"], bitstream_origin=info["bitstream_origin"],
                   clock_hz=engine.descriptor.clock_hz, envelope=info["envelope"])
        memory = getattr(hw, "memory", None)
        if memory is not None and hasattr(memory, "size"):
            env["emulated_cma_bytes"] = memory.size
        self.published = cost_model.for_board(info["board"])
        env["family"] = self.published.family

    def step_cv2(self) -> None:
        section = self._section(self.report.measurements)
        repeat = self.settings.repeat
        rows = section.setdefault("cv2", [])
        frames = {FRAME_1080P: _random_frame(*FRAME_1080P), FRAME_4K: _random_frame(*FRAME_4K),
                  (480, 640): _random_frame(480, 640)}
        before = cv2.getNumThreads()
        try:
            for threads in (before, 1):  # as it is first: nothing changed yet
                if threads != before:
                    cv2.setNumThreads(threads)
                for name, inp, (out_rows, out_cols) in CV2_SHAPES:
                    call = partial(CV2_RESIZE, frames[inp], (out_cols, out_rows))
                    wall, cpu = timed(call, repeat)
                    row = {"shape": name, "sizes": [*inp, out_rows, out_cols],
                           "threads": threads, "wall_ms": wall * 1e3, "cpu_ms": cpu * 1e3}
                    if self.published is not None and threads == before:
                        model = cost_model.cv2_cost(self.published, (*inp, out_rows, out_cols))
                        row.update(model_ms=model.latency * 1e3, model_cpu_ms=model.cpu * 1e3)
                    rows.append(row)
        finally:
            machine_facts.restore_cv2_threads(before)
        self.found.update(calibration.cv2_constants(*FRAME_1080P, repeat))

    def step_buffers(self) -> None:
        section = self._section(self.report.measurements)
        engine = self._need_engine(section.setdefault("buffers", {}))
        if engine is None:
            return
        repeat = self.settings.repeat
        buffers = section["buffers"]
        for nbytes in BUFFER_SIZES:
            src = np.random.default_rng(1).integers(0, 256, nbytes, dtype=np.uint8)
            seconds = calibration.buffer_seconds(engine.board, src, repeat)
            buffers[f"{nbytes / 1e6:.2f} MB"] = {
                "bytes": nbytes, **{f"{k}_ms": v * 1e3 for k, v in seconds.items()},
                **self._buffer_model(nbytes),
            }
            if nbytes == BUFFER_SIZES[0]:
                self.found.update(calibration.buffer_constants(seconds, nbytes))

    def _buffer_model(self, nbytes: int) -> dict[str, float]:
        """What the published constants say the same operations cost."""
        c = self.published
        if c is None:
            return {}
        return {
            "model_into_cacheable_ms": nbytes / c.memcpy_bytes_per_s * 1e3,
            "model_out_of_cacheable_ms": nbytes / c.memcpy_bytes_per_s * 1e3,
            "model_into_non_cacheable_ms": nbytes / c.wc_write_bytes_per_s * 1e3,
            "model_out_of_non_cacheable_ms": nbytes / c.uncached_read_bytes_per_s * 1e3,
            "model_flush_ms": nbytes * c.flush_s_per_byte * 1e3,
            "model_invalidate_ms": nbytes * c.invalidate_s_per_byte * 1e3,
        }

    def step_coherency(self) -> None:
        section = self._section(self.report.coherency)
        engine = self._need_engine(section)
        if engine is None:
            return
        coherency.check(engine, section)
        if section["failure"] is not None:
            logger.error("pynq-cv doctor: COHERENCY FAILURE: %s", section["failure"])

    def step_mmio(self) -> None:
        section = self._section(self.report.measurements)
        mmio = section.setdefault("mmio", {})
        engine = self._need_engine(mmio)
        if engine is None:
            return
        seconds = calibration.register_seconds(engine.driver.ip, self.settings.repeat)
        mmio.update(read_us=seconds["read"] * 1e6, write_us=seconds["write"] * 1e6)
        register_s = self.found["register_access_s"] = (seconds["read"] + seconds["write"]) / 2
        if self.published is None:
            return
        mmio["model_us"] = self.published.register_access_s * 1e6
        # one small frame: the driver's own work, less its registers, is the Python per frame
        driver = calibration.driver_seconds(engine, self.settings.repeat)
        counted = driver["accesses"] is not None
        accesses = driver["accesses"] if counted else self.published.register_accesses
        python = max(driver["frame_s"] - driver["ip_s"] - accesses * register_s, 0.0)
        mmio.update(frame_us=driver["frame_s"] * 1e6, register_accesses=accesses,
                    accesses_counted=counted, frame_python_us=python * 1e6,
                    model_accesses=self.published.register_accesses,
                    model_frame_python_us=self.published.frame_python_s * 1e6)
        self.found["frame_python_s"] = python
        if counted:
            self.found["register_accesses"] = accesses

    def step_verify(self) -> None:
        section = self._section(self.report.verify)
        section.update(exact=0, mismatched=0, not_on_pl=0, cases=[])
        if self._need_engine(section) is None:
            return
        from .cli.verify import DEFAULT_PAIRS, PATTERNS, pattern_frame

        resizer = self.resizer
        patterns = PATTERNS[:1] if self.settings.quick else PATTERNS
        for (in_w, in_h), (out_w, out_h) in DEFAULT_PAIRS:
            for kind in patterns:
                src = pattern_frame(kind, in_w, in_h)
                pl_before = resizer.stats.snapshot()["pl"]
                got = resizer.resize(src, (out_w, out_h))
                on_pl = resizer.stats.snapshot()["pl"] > pl_before
                largest, _, _ = difference(got, resize_exact(src, out_h, out_w))
                case = {"pattern": kind, "input": f"{in_w}x{in_h}",
                        "output": f"{out_w}x{out_h}", "on_pl": on_pl,
                        "max_difference": largest}
                section["cases"].append(case)
                if not on_pl:
                    section["not_on_pl"] += 1
                elif largest:
                    section["mismatched"] += 1
                else:
                    section["exact"] += 1
        section["fallback"] = resizer.stats.snapshot()["fallback"]
        if section["mismatched"]:
            logger.error("pynq-cv doctor: %d PL frame(s) differ from the IP's exact arithmetic",
                         section["mismatched"])

    def step_stream(self) -> None:
        section = self._section(self.report.stream)
        section["cases"] = []
        engine = self.engine
        for name, inp, out in STREAMS:
            sizes = (*inp, *out)
            case: dict[str, Any] = {"stream": name, "shape": _shape_name((name, inp, out)),
                                    "sizes": list(sizes)}
            section["cases"].append(case)
            count = self.settings.stream_frames // (2 if inp == FRAME_4K else 1)
            frames = [_random_frame(*inp, seed) for seed in range(min(count, 3))]
            feed = [frames[i % len(frames)] for i in range(count)]
            dsize = (out[1], out[0])
            case["cv2_fps"] = _fps(partial(_cv2_to, dsize), feed)
            if engine is None:
                case["pl"] = "no PL path"
                continue
            why = engine.envelope.size_reason(*sizes)
            if why is not None:
                case["pl"] = f"not eligible on this overlay ({why}): the stream runs cv2"
                continue
            case.update(self._pl_stream(feed, dsize))

    def _pl_stream(self, feed: list[np.ndarray], dsize: tuple[int, int]) -> dict[str, Any]:
        """PL fps of ``Resizer.stream``; on the emulator paced to the IP's modelled time."""
        resizer = self.resizer
        own = None
        if self.report.emulated:
            board = self.report.environment.get("board")
            own = resizer = pynq_cv.Resizer("emulator", board=board, pace=True, policy="pl",
                                            calibration={})
        try:
            assert resizer is not None
            for _ in resizer.stream(feed[:2], dsize):  # plans and both sets of buffers
                pass
            before = resizer.stats.snapshot()["pl"]
            c0, t0 = time.process_time(), time.perf_counter()
            produced = sum(1 for _ in resizer.stream(feed, dsize))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            on_pl = resizer.stats.snapshot()["pl"] - before
        finally:
            if own is not None:
                own.close()
        return {"pl_fps": produced / wall, "pl_cpu_ms_per_frame": cpu / produced * 1e3,
                "frames": produced, "frames_on_pl": on_pl,
                "paced": "to the IP's modelled time" if own is not None else "the board"}

    def step_routes(self) -> None:
        section = self._section(self.report.routes)
        if self.published is None:
            section.update(skipped="the image step did not finish")
            return
        engine = self.engine
        if engine is not None:
            clock, envelope = engine.descriptor.clock_hz, engine.envelope
        else:  # no PL here: the board's model, with the cv2 constants measured
            desc = descriptor_for(self.report.environment.get("board"))
            clock, envelope = desc.clock_hz, Envelope.from_descriptor(desc)
        measured = self.measured_costs()
        shapes = route_shapes()
        published_rows = route_rows(self.published, clock, shapes, self.policy,
                                    envelope=envelope)
        measured_rows = route_rows(measured, clock, shapes, self.policy, envelope=envelope)
        changed = [
            {"shape": new["shape"], "mode": new["mode"], "published": old["path"],
             "measured": new["path"], "reason": new["reason"]}
            for old, new in zip(published_rows, measured_rows, strict=True)
            if old["path"] != new["path"]
        ]
        section.update(policy=self.policy, board=self.report.environment.get("board"),
                       rows=measured_rows, published_rows=published_rows, changed=changed,
                       constants=self.constants_table())
        cases = self.report.stream.get("cases", [])
        self.report.stream["modelled"] = [
            {"shape": row["shape"], "pl_fps": row["pl_fps"], "cv2_fps": row["cv2_fps"],
             "path": row["path"]}
            for row in measured_rows
            if row["mode"] == "stream" and row["shape"] in {c["shape"] for c in cases}
        ]

    # -- constants ------------------------------------------------------------------------

    def measured_costs(self) -> BoardCosts:
        """The published constants with every measured one in its place."""
        assert self.published is not None
        where = "the board" if self.on_board else "this host (not a board)"
        return self.published.with_values(dict(self.found), f"pynq-cv doctor on {where}",
                                          "measured")

    def constants_table(self) -> list[dict[str, Any]]:
        """Every cost constant: measured (or None) beside the published value and source."""
        assert self.published is not None
        table = []
        for name, (unit, what) in cost_model.CONSTANTS.items():
            published = self.published.constants[name]
            table.append({"name": name, "unit": unit, "what": what,
                          "measured": self.found.get(name), "published": published.value,
                          "source": published.source})
        return table

    def calibration_data(self) -> dict[str, Any] | None:
        """The measured constants as a calibration file's content (None: nothing measured)."""
        if not self.found or self.published is None:
            return None
        where = platform.node() or "this machine"
        return calibration.document(
            dict(self.found), emulated=not self.on_board,
            board=self.report.environment.get("board", "?"), family=self.published.family,
            how=f"pynq-cv doctor on {where}, best of {self.settings.repeat}",
        )


def _shape_name(stream: tuple[str, tuple[int, int], tuple[int, int]]) -> str:
    _, (ir, ic), (orow, ocol) = stream
    return f"{ic}x{ir}->{ocol}x{orow}"


def _cv2_to(dsize: tuple[int, int], frame: np.ndarray) -> np.ndarray:
    return CV2_RESIZE(frame, dsize)


def _fps(fn: Callable[[np.ndarray], Any], feed: list[np.ndarray]) -> float:
    fn(feed[0])
    t0 = time.perf_counter()
    for frame in feed:
        fn(frame)
    return len(feed) / max(time.perf_counter() - t0, 1e-9)


def write_json(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n",
                    encoding="utf-8")
