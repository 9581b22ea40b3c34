"""Every fallback reason in words: for strict-mode errors, DEBUG logs and the profile.

The keys are the short names counted in ``stats()["fallback"]``; ``explain`` adds the
frame's own figures where they make the reason concrete (sizes, bytes, the DMA's limit).
The README's reference lists the same reasons.
"""

from __future__ import annotations

from typing import Any

FALLBACK_REASONS: dict[str, str] = {
    "not_ndarray": "the source is not a numpy array (a cv2.UMat, a list, ...)",
    "channels": "the source is not a 3-channel (BGR) image",
    "dtype": "the source's pixels are not uint8",
    "interpolation": "the interpolation is not INTER_LINEAR, the only one the PL computes",
    "arguments": "dsize/fx/fy are ones cv2 rejects or treats specially; cv2 answers itself",
    "dst": "the dst argument is not a writable uint8 array cv2 would fill in place",
    "input_too_few_rows": "the input has fewer rows than the IP needs (2)",
    "empty": "the input or the output has no pixels",
    "input_too_large": "the input is larger than the overlay takes",
    "output_too_large": "the output is larger than the overlay produces",
    "downscale_too_large": "the downscale factor is beyond the IP's limit",
    "byte_count_not_multiple": "the input or output byte count is not a multiple of the "
                               "DMA's 4-byte beat",
    "dma_length": "the input or output is larger than one DMA transfer can carry",
    "cpu_faster": "the routing plan (policy latency, or auto for a single call) expects "
                  "cv2 to finish this frame sooner than the PL",
    "cpu_cheaper": "the routing plan (policy offload, or auto for a stream) expects cv2 to "
                   "cost the CPU less than driving the PL",
    "cpu_higher_rate": "the routing plan (policy throughput; offload or auto for a stream "
                       "without a source rate) expects cv2 to keep a higher frame rate than "
                       "the PL: the PL would lower it",
    "pl_too_slow_for_rate": "the routing plan (policy offload, or auto for a stream, with the "
                            "source's fps given) expects the PL to fall behind the source's "
                            "frame rate",
    "policy_cpu": "the routing policy is cpu (PYNQ_CV_POLICY=cpu or Resizer(policy='cpu'))",
    "breaker_open": "the PL failed several frames in a row; the circuit breaker rests it",
    "backend_cpu": "the CPU backend is in use (PYNQ_CV_BACKEND=cpu or use_backend('cpu'))",
    "no_backend": "no PL could be opened (no board and no emulator, or the overlay failed)",
    "pl_in_use": "another process holds the PL (or this is a fork of the process that does)",
    "pl_state_unknown": "pynq cannot say what the PL holds, and pynq_cv will not program it "
                        "blind (PYNQ_CV_REPROGRAM=1 allows it)",
    "pl_holds_other_overlay": "the PL holds another design; pynq_cv will not replace it "
                              "(PYNQ_CV_REPROGRAM=1 allows it)",
    "closed": "the engine was closed",
    "cv2_mat": "the source or dst is a cv2.Mat, which cv2 reads its own way (wrap_channels)",
    "arguments_rejected": "cv2 cannot parse the call's arguments; cv2 raises its own error",
}

HINTS: dict[str, str] = {
    "not_ndarray": "pass a numpy array (a cv2.UMat's .get(), np.asarray(list))",
    "channels": "convert to BGR first (cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) or "
                "COLOR_BGRA2BGR); the PL takes 3-channel uint8 frames",
    "dtype": "convert to uint8 first (img.astype(np.uint8), or cv2.convertScaleAbs)",
    "interpolation": "use interpolation=cv2.INTER_LINEAR (the default), the only one the PL "
                     "computes",
    "arguments": "give dsize as (width, height) with both > 0, or fx/fy > 0 with dsize None",
    "dst": "pass dst=None, or a writable C-contiguous uint8 array of the output's shape",
    "input_too_few_rows": "frames of 2 rows or more reach the PL",
    "empty": "nothing to compute: the input or output has no pixels",
    "input_too_large": "resize in two steps (cv2 first to within the overlay's input limit)",
    "output_too_large": "ask for an output within the overlay's limit (pynq_cv.info()"
                        "['envelope']['max_out']) and enlarge the rest with cv2",
    "downscale_too_large": "downscale in two steps (the PL for the last, smaller factor)",
    "byte_count_not_multiple": "choose sizes whose byte counts (width x height x 3) are "
                               "multiples of 4, i.e. width x height a multiple of 4 (e.g. "
                               "320x240 rather than 321x241)",
    "dma_length": "split the frame, or resize in two steps (each transfer within the DMA's "
                  "limit)",
    "cpu_faster": "PYNQ_CV_POLICY=pl (or Resizer(policy='pl')) sends it to the PL anyway; "
                  "offload when the PL costs the CPU less",
    "cpu_cheaper": "PYNQ_CV_POLICY=pl sends it to the PL anyway; latency when the PL is "
                   "faster end to end",
    "cpu_higher_rate": "PYNQ_CV_POLICY=pl sends it to the PL anyway (at a lower frame rate "
                       "than cv2's)",
    "pl_too_slow_for_rate": "PYNQ_CV_POLICY=pl sends it to the PL anyway (it would fall "
                            "behind the source); a smaller output or a lower rate may fit",
    "policy_cpu": "unset PYNQ_CV_POLICY (or choose auto) to use the PL",
    "breaker_open": "see the faults in pynq_cv.stats(); the PL is tried again after the "
                    "breaker's cooldown",
    "backend_cpu": "unset PYNQ_CV_BACKEND (or use_backend('board')) to use the PL",
    "no_backend": "see `pynq-cv info` for why no PL could be opened",
    "pl_in_use": "stop the other process holding the PL, or Resizer(wait_for_pl=SECONDS)",
    "pl_state_unknown": "PYNQ_CV_REPROGRAM=1 lets pynq_cv program the PL",
    "pl_holds_other_overlay": "PYNQ_CV_REPROGRAM=1 lets pynq_cv replace the design",
    "closed": "resize before pynq_cv.close(), or let the next frame reopen the engine",
    "cv2_mat": "pass numpy arrays (np.asarray(mat)) rather than cv2.Mat",
    "arguments_rejected": "cv2 raised its own error: fix the call's arguments",
    "not_routed": "cv2 judged the call itself (arguments it rejects or treats specially)",
}
"""One action per fallback reason that would send such frames to the PL (the profile's
hints). Faults (``fault_<kind>``) have none: they are the PL's, not the call's."""


def hint(reason: str) -> str:
    """What the user could change so such frames reach the PL ('' when nothing would)."""
    if reason.startswith("fault_"):
        return "a PL fault, not the call's: see pynq_cv.stats()['faults']"
    return HINTS.get(reason, "")


POLICY_REASONS = frozenset({
    "cpu_faster", "cpu_cheaper", "cpu_higher_rate", "pl_too_slow_for_rate", "policy_cpu",
})
"""The routing plan's own choices: the frame could run on the PL, the policy preferred cv2."""

FAULTS: dict[str, str] = {
    "dma_error": "the DMA reported an error",
    "timeout": "the frame did not complete before its deadline",
    "short_transfer": "the DMA moved fewer bytes than the frame has",
    "ip_stuck": "the resizer IP stayed busy even after recovery",
    "busy": "another frame held the PL past this frame's deadline",
    "closed": "the engine was closed while this frame was prepared",
    "cma_exhausted": "no contiguous (CMA) memory was left for the frame's buffers",
    "pool_budget": "the frame's buffers do not fit the pool's byte budget",
    "overlay": "the overlay could not be opened",
}


def describe(reason: str) -> str:
    """A reason in plain words (``fault_<kind>`` included); unknown names come back as-is."""
    if reason.startswith("fault_"):
        kind = reason.removeprefix("fault_")
        return f"a PL fault: {FAULTS.get(kind, kind)}; the frame was computed by cv2.resize"
    return FALLBACK_REASONS.get(reason, reason)


def explain(reason: str, src: Any, out_rows_cols: tuple[int, int] | None = None,
            envelope: Any = None) -> str:
    """``describe(reason)`` with the frame's own figures when the envelope is known."""
    words = describe(reason)
    shape = getattr(src, "shape", None)
    if envelope is None or shape is None or len(shape) != 3 or out_rows_cols is None:
        return words
    in_bytes = shape[0] * shape[1] * shape[2]
    out_bytes = out_rows_cols[0] * out_rows_cols[1] * shape[2]
    if reason == "dma_length":
        limit = envelope.max_transfer_bytes
        which, size = ("input", in_bytes) if in_bytes > limit else ("output", out_bytes)
        return f"{which} {size / 1e6:.1f} MB exceeds this DMA's {limit:,}-byte transfer limit"
    if reason == "byte_count_not_multiple":
        return (f"{words}: input {in_bytes:,} bytes, output {out_bytes:,} bytes "
                f"(multiples of {envelope.byte_multiple} needed)")
    if reason == "input_too_large":
        return f"{words}: {shape[0]}x{shape[1]} rows x cols, at most {envelope.max_in}"
    if reason == "output_too_large":
        return f"{words}: {out_rows_cols[0]}x{out_rows_cols[1]} rows x cols, " \
               f"at most {envelope.max_out}"
    return words
