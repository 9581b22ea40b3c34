"""Stream a camera (or a file, or a generated clip) as MJPEG over HTTP, resized on the PL.

    python examples/camera_stream.py                 # generated clip on http://127.0.0.1:8080/
    python examples/camera_stream.py --source 0      # camera 0
    python examples/camera_stream.py --source clip.mp4 --size 640x360 --bind 0.0.0.0
    python examples/camera_stream.py --port 0 --max-frames 50   # a free port; stop by itself

Open ``/`` in a browser: an ``<img>`` of the stream and the live counters. ``/stream`` is the
stream itself (``multipart/x-mixed-replace``, one ``image/jpeg`` part per frame, each with its
``Content-Length``), ``/stats`` is ``pynq_cv.stats()`` as JSON.

One producer thread captures, resizes (the patched ``cv2.resize``: the PL on a board, the
emulator elsewhere) and encodes each frame once (``cv2.imencode``); every viewer gets the
latest JPEG, so a slow viewer drops frames instead of slowing the others. While nobody
watches, nothing is captured.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

import pynq_cv
from pynq_cv.cli import parse_size, synthetic_frame
from pynq_cv.opencv_log import opencv_quiet

BOUNDARY = "frame"


class FrameHub:
    """The latest JPEG and its number; the producer publishes, viewers wait for the next."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.jpeg = b""
        self.seq = 0
        self.viewers = 0
        self.done = False

    def publish(self, jpeg: bytes) -> None:
        with self._cond:
            self.jpeg, self.seq = jpeg, self.seq + 1
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.done = True
            self._cond.notify_all()

    def next_after(self, seq: int) -> tuple[int, bytes] | None:
        """The first frame newer than ``seq``; None once the stream is over."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq != seq or self.done)
            return (self.seq, self.jpeg) if self.seq != seq else None

    def join(self) -> None:
        with self._cond:
            self.viewers += 1
            self._cond.notify_all()

    def leave(self) -> None:
        with self._cond:
            self.viewers -= 1
            self._cond.notify_all()

    def wait_for_viewer(self) -> bool:
        """Block while nobody watches; False when the stream is over."""
        with self._cond:
            self._cond.wait_for(lambda: self.viewers > 0 or self.done)
            return not self.done

    def wait_until_unwatched(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.viewers == 0, timeout)


class SourceError(Exception):
    """A source that gives no frames: said in one line before anything is served."""


def open_source(source: str) -> tuple[cv2.VideoCapture, np.ndarray]:
    """The capture of a camera index or a file, and its first frame, or SourceError."""
    camera = source.isdigit()
    if not camera and Path(source).is_dir():
        raise SourceError(f"{source} is a directory, not a video file")
    if not camera and not Path(source).exists():
        raise SourceError(f"no such file: {source}")
    with opencv_quiet():
        cap = cv2.VideoCapture(int(source) if camera else source)
        ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        what = f"camera {source}" if camera else f"{source} as a video"
        raise SourceError(f"cannot open {what}")
    return cap, first


def frames_from(
    source: str | None, opened: tuple[cv2.VideoCapture, np.ndarray] | None,
    input_size: tuple[int, int],
) -> Iterator[np.ndarray]:
    """Endless frames: a camera, a file (looped), or the generated clip."""
    if opened is None:
        index = 0
        while True:
            yield synthetic_frame(index, *input_size)
            index += 1
    cap, first = opened
    try:
        yield first
        rewound = False
        while True:
            ok, frame = cap.read()
            if ok:
                rewound = False
                yield frame
            elif source.isdigit() or rewound:
                return  # camera gone, or a file that will not play again
            else:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                rewound = True
    finally:
        cap.release()


def produce(hub: FrameHub, frames: Iterator[np.ndarray], size: tuple[int, int],
            max_frames: int, fps: float, quality: int, failure: list[BaseException]) -> None:
    """Capture -> cv2.resize (patched) -> cv2.imencode -> publish, paced at ``fps``.

    An exception ends the stream and lands in ``failure`` for the main thread to report."""
    interval = 1.0 / fps if fps > 0 else 0.0
    produced = 0
    next_at = time.monotonic()
    try:
        while hub.wait_for_viewer():
            frame = next(frames, None)
            if frame is None:
                break
            small = cv2.resize(frame, size)
            ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                hub.publish(jpeg.tobytes())
                produced += 1
            if max_frames and produced >= max_frames:
                break
            next_at += interval
            time.sleep(max(next_at - time.monotonic(), 0.0))
            next_at = max(next_at, time.monotonic() - interval)  # no bursts after a stall
    except Exception as exc:  # noqa: BLE001 -- reported by main(), not lost with the thread
        failure.append(exc)
    finally:
        hub.finish()


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pynq_cv stream</title></head>
<body style="font-family: sans-serif">
<h1>pynq_cv: the patched cv2.resize (PL or cv2: see "pl" and "cpu" below)</h1>
<img src="/stream" width="{w}" height="{h}" alt="stream">
<pre id="stats">...</pre>
<script>
setInterval(async () => {{
  try {{
    const s = await (await fetch('/stats')).json();
    document.getElementById('stats').textContent = JSON.stringify(s, null, 2);
  }} catch (e) {{}}
}}, 1000);
</script>
</body></html>
"""


def make_handler(hub: FrameHub, size: tuple[int, int], verbose: bool) -> type:
    page = PAGE.format(w=size[0], h=size[1]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            self._answer(head=False)

        def do_HEAD(self) -> None:  # noqa: N802 -- the GET's headers, no body
            self._answer(head=True)

        def _answer(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", page, head)
            elif path == "/stats":
                body = dict(pynq_cv.stats(), frames=hub.seq, viewers=hub.viewers)
                self._send(HTTPStatus.OK, "application/json", json.dumps(body).encode(), head)
            elif path == "/stream":
                self._stream(head)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n", head)

        def _send(self, status: HTTPStatus, kind: str, body: bytes, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _stream(self, head: bool) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Pragma", "no-cache")
            self.end_headers()
            if head:
                return
            hub.join()
            try:
                seq = 0
                while (item := hub.next_after(seq)) is not None:
                    seq, jpeg = item
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                    )
                    self.wfile.write(jpeg)
                    self.wfile.write(b"\r\n")
                    self.wfile.flush()
                self.wfile.write(f"--{BOUNDARY}--\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the viewer went away
            finally:
                hub.leave()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            if verbose:
                super().log_message(format, *args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="camera index or video file (default: generated clip)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--size", type=parse_size, default=(640, 360), help="stream WxH")
    parser.add_argument("--input-size", type=parse_size, default=(1280, 720),
                        help="size of the generated clip")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate cap (0: none)")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    parser.add_argument("--backend", help="board, emulator or cpu (default: auto)")
    parser.add_argument("--board", help="board model, e.g. Pynq-Z2, KV260 (default: "
                                        "$PYNQ_CV_BOARD, else Pynq-Z2)")
    parser.add_argument("--policy", help="auto, latency, offload, pl or cpu: which eligible "
                                         "frames go to the PL (default: auto)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    options = {"board": args.board} if args.board else {}
    try:
        pynq_cv.use_backend(args.backend, policy=args.policy, **options)
    except (pynq_cv.BackendUnavailable, pynq_cv.SettingError) as exc:  # e.g. a typo
        print(f"camera_stream: {exc}", file=sys.stderr)
        return 2
    try:  # the source first: nothing is announced that cannot be served
        opened = open_source(args.source) if args.source is not None else None
    except SourceError as exc:
        print(f"camera_stream: {exc}", file=sys.stderr)
        return 1
    hub = FrameHub()
    try:
        server = ThreadingHTTPServer(
            (args.bind, args.port), make_handler(hub, args.size, args.verbose)
        )
    except (OSError, OverflowError) as exc:  # port busy or privileged, no such address
        if opened is not None:
            opened[0].release()
        reason = getattr(exc, "strerror", None) or str(exc)
        print(f"camera_stream: cannot listen on {args.bind}:{args.port}: {reason}",
              file=sys.stderr)
        return 1
    server.daemon_threads = True
    host, port = server.server_address[:2]

    pynq_cv.patch()
    failure: list[BaseException] = []
    frames = frames_from(args.source, opened, args.input_size)
    producer = threading.Thread(
        target=produce, name="producer", daemon=True,
        args=(hub, frames, args.size, args.max_frames, args.fps, args.quality, failure),
    )
    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    interrupted = False
    try:
        serving.start()
        producer.start()
        print(f"serving http://{host}:{port}/ (stream: /stream, counters: /stats)", flush=True)
        while producer.is_alive():
            producer.join(0.5)
    except KeyboardInterrupt:
        interrupted = True
        print("stopping", flush=True)
    finally:
        hub.finish()
        hub.wait_until_unwatched(timeout=5.0)  # let viewers read the closing boundary
        if serving.is_alive():
            server.shutdown()
        server.server_close()
        pynq_cv.unpatch()
    stats = pynq_cv.stats()
    per_frame = ""
    if stats["pl"]:
        per_frame = (f", modelled board time {stats['board_seconds'] / stats['pl'] * 1e3:.2f} "
                     "ms per PL frame")
    print(f"{hub.seq} frames streamed: {stats['pl']} resized on the PL, {stats['cpu']} on the "
          f"CPU{per_frame}", flush=True)
    pynq_cv.close()
    if failure:
        print(f"camera_stream: the stream stopped: {failure[0]}", file=sys.stderr)
        return 1
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
