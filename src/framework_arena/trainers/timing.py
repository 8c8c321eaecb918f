"""Step and epoch timing shared by every trainer: warm-up left out, median of timed windows."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

#: Timed windows per epoch for the median throughput, and the fewest steps in one (a window of a
#: few milliseconds would measure the scheduler's tick more than the training).
WINDOWS_PER_EPOCH = 4
MIN_WINDOW_STEPS = 10


class Stopwatch:
    """Step and epoch timing with the warm-up left out of throughput, and a robust steady figure.

    Past the warm-up, the steps are timed in windows of ``window_steps`` steps (a window ends at
    an epoch's end too; a last window shorter than half of that is dropped, validation is never in
    one). ``speed/samples_per_s`` (:meth:`end_logs`) is the median over the windows, with their
    10th and 90th percentiles beside it: one burst or stall cannot decide it. Each epoch's own
    figure is ``speed/epoch_samples_per_s``.

    A trainer calls :meth:`start` before anything of the training runs, then around each epoch's
    steps :meth:`epoch_start`, :meth:`step_end` after every optimizer step, and :meth:`epoch_end`.
    ``sync`` waits until the device has finished the work queued so far (``cuda.synchronize`` or
    reading a value back); it is called only where a timestamp is taken that must be true: at
    each epoch's start and end, after the first step and after the last warm-up step, never per
    step.

    Args:
        warmup_steps: optimizer steps from the start of training whose time and samples are not
            counted in ``speed/samples_per_s`` (tracing, compilation, caches, allocator).
        sync: waits for the device; nothing to wait for on a CPU.
        window_steps: steps per timed window; a sync at each window's end (none on a CPU).
    """

    #: The clock read at every mark. ``bench/overhead.py --clock cpu`` sets ``time.process_time``
    #: (CPU seconds of the process) to measure work rather than wall time on a shared machine.
    clock: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(self, warmup_steps: int, sync: Callable[[], Any] | None = None, window_steps: int = 10) -> None:
        self.warmup_steps = warmup_steps
        self.window_steps = max(1, window_steps)
        self.windows: list[float] = []  # samples/s of each timed window
        self._window: tuple[float, int, int] | None = None  # (start, steps, samples) of the open window
        self.sync = sync or (lambda: None)
        self.fit_start = 0.0
        self.first_step_end: float | None = None
        self.step = 0  # optimizer steps done, over all epochs
        self.epoch_begin = 0.0
        self._epoch_steps = 0
        self._steady_from: float | None = None  # where this epoch's timed part starts
        self._steady_samples = self._steady_steps = 0
        self._first_step_s = 0.0
        self._after_first: tuple[float, int] | None = None  # first epoch after its first step
        self._steady_time, self._steady_steps_total = 0.0, 0

    def start(self) -> None:
        self.fit_start = self.clock()

    def epoch_start(self) -> None:
        self.sync()
        self.epoch_begin = self.clock()
        self._steady_from = self.epoch_begin if self.step >= self.warmup_steps else None
        self._window = (self.epoch_begin, 0, 0) if self._steady_from is not None else None
        self._steady_samples = self._steady_steps = self._epoch_steps = 0

    def step_end(self, samples: int) -> None:
        """Counts one optimizer step of ``samples`` samples (cheap: a sync only at the marks)."""
        self.step += 1
        self._epoch_steps += 1
        if self._steady_from is not None:
            self._steady_samples += samples
            self._steady_steps += 1
            begin, steps, counted = self._window  # type: ignore[misc]
            if steps + 1 < self.window_steps:
                self._window = (begin, steps + 1, counted + samples)
            else:  # the window is full: one sync, one clock read
                self.sync()
                now = self.clock()
                self.windows.append((counted + samples) / max(now - begin, 1e-12))
                self._window = (now, 0, 0)
        if self.step == 1 or self.step == self.warmup_steps:
            self.sync()
            now = self.clock()
            if self.step == 1:
                self.first_step_end = now
                self._first_step_s = now - self.epoch_begin
            if self.step == self.warmup_steps:  # the warm-up ends here; the timed part starts
                self._steady_from = now
                self._window = (now, 0, 0)

    def epoch_end(self, now: float | None = None) -> dict[str, float]:
        """``speed/epoch_time_s``, and ``speed/epoch_samples_per_s`` over the steps past the warm-up, if any.

        Args:
            now: when the epoch's last step ended, if it was taken earlier (Keras takes it in its
                batch-end hook, before validation); the device is synced and the clock read otherwise.
        """
        if now is None:
            self.sync()
            now = self.clock()
        logs = {"speed/epoch_time_s": now - self.epoch_begin}
        if self._window is not None and self._window[1] * 2 >= self.window_steps and now > self._window[0]:
            self.windows.append(self._window[2] / (now - self._window[0]))  # the epoch's last window
        self._window = None
        if self._steady_from is not None and self._steady_samples:
            logs["speed/epoch_samples_per_s"] = self._steady_samples / (now - self._steady_from)
            self._steady_time += now - self._steady_from
            self._steady_steps_total += self._steady_steps
        if self._after_first is None and self.first_step_end is not None:
            self._after_first = (now - self.first_step_end, self._epoch_steps - 1)
        return logs

    def end_logs(self) -> dict[str, float]:
        """``speed/time_to_first_step_s``, ``speed/compile_time_s``, ``speed/fit_time_s`` and, once a window was
        timed, ``speed/samples_per_s`` (median of the windows), ``speed/samples_per_s_p10`` /
        ``_p90`` and ``speed/windows``.

        ``speed/compile_time_s`` is what the first step took beyond a steady step: tracing, graph
        compilation and first-call initialisation, whatever the framework does lazily. A steady
        step is the mean step past the warm-up, or else the mean of the first epoch's later steps.
        """
        now = self.clock()
        first = self.first_step_end if self.first_step_end is not None else now
        t, n = self._steady_time, self._steady_steps_total
        t1, n1 = self._after_first or (0.0, 0)
        steady_step = t / n if n else (t1 / n1 if n1 else 0.0)
        logs = {
            "speed/time_to_first_step_s": first - self.fit_start,
            "speed/compile_time_s": max(0.0, self._first_step_s - steady_step),
            "speed/fit_time_s": now - self.fit_start,
        }
        if self.windows:
            p10, p50, p90 = np.percentile(self.windows, [10, 50, 90])
            logs.update({"speed/samples_per_s": float(p50), "speed/samples_per_s_p10": float(p10), "speed/samples_per_s_p90": float(p90)})
            logs["speed/windows"] = float(len(self.windows))
        return logs
