"""Progress of a grading batch: a bar with counts, rate and ETA, quiet enough for CI logs."""
import sys
import time
from collections import Counter

STATUSES = ("graded", "flagged", "error", "skipped")
BAR_WIDTH = 20
# Off a terminal every line stays in the log, so print only now and then.
LOG_EVERY_SECONDS = 5.0
LOG_EVERY_FRACTION = 0.1


def clock_text(seconds):
    """`0:24`, `12:05`, `1:02:03`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def progress_line(label, total, counts, elapsed, *, final=False):
    """One status line: label, bar, done/total, counts per status, rate, then ETA or elapsed.

    The rate counts only work done in this run: skipped (resumed) items take no time, so
    counting them would promise an ETA the remaining submissions cannot keep.
    """
    done = sum(counts.values())
    worked = done - counts.get("skipped", 0)
    filled = BAR_WIDTH if total == 0 else BAR_WIDTH * done // total
    bar = "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"
    tally = " ".join(f"{status} {counts[status]}" for status in STATUSES if counts.get(status))
    rate = worked / elapsed if elapsed > 0 else 0.0
    if final:
        tail = f"done in {clock_text(elapsed)}"
    elif done >= total:
        tail = "ETA 0:00"
    else:
        tail = f"ETA {clock_text((total - done) / rate)}" if rate > 0 else "ETA ?"
    counter = f"{done:>{len(str(total))}}/{total}"  # fixed width, so the line does not jitter
    parts = [f"{label} {bar}".strip(), counter, tally, f"{rate:.1f}/s", tail]
    return "  ".join(part for part in parts if part)


def throughput(per_worker, elapsed):
    """{worker: (submissions, per second)} over the run's wall time, busiest first."""
    return {worker: (count, count / elapsed if elapsed > 0 else 0.0)
            for worker, count in per_worker.most_common()}


def worker_lines(rates):
    """One indented line per worker: `  tcp://10.0.0.5:39211  120 submissions  7.9/s`."""
    width = max((len(worker) for worker in rates), default=0)
    return [f"  {worker:<{width}}  {count} submissions  {rate:.1f}/s"
            for worker, (count, rate) in rates.items()]


class Progress:
    """Context manager that reports a batch of `total` submissions as they finish.

    On a terminal one line is redrawn in place; elsewhere a plain line is printed at most
    every LOG_EVERY_SECONDS or LOG_EVERY_FRACTION of the batch. A final line with the
    elapsed time is always printed, even when the batch stops on an exception.
    """

    def __init__(self, total, *, stream=None, label="", clock=time.monotonic):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.clock = clock
        self.counts = Counter()
        self.per_worker = Counter()
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn_width = 0

    def __enter__(self):
        self.started = self.clock()
        self.last_logged = (self.started, 0)  # (time, items done) of the last plain line
        if self.is_tty:
            self._show(self._line())
        return self

    def advance(self, status="graded", worker=""):
        """Count one finished submission with its status (one of STATUSES) and where it ran."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        self.counts[status] += 1
        if worker:
            self.per_worker[worker] += 1
        if self.is_tty:
            self._show(self._line())
            return
        now, done = self.clock(), sum(self.counts.values())
        logged_at, logged_done = self.last_logged
        if (now - logged_at >= LOG_EVERY_SECONDS
                or done - logged_done >= max(1, self.total * LOG_EVERY_FRACTION)):
            self.last_logged = (now, done)
            self._show(self._line(), end="\n")

    def __exit__(self, *exc_info):
        self.elapsed = self.clock() - self.started
        self._show(self._line(final=True), end="\n")
        for line in worker_lines(self.throughput()):
            self._show(line, end="\n")

    def throughput(self):
        """Submissions run by each worker in this batch, and each one's rate."""
        elapsed = getattr(self, "elapsed", None) or self.clock() - self.started
        return throughput(self.per_worker, elapsed)

    def _line(self, final=False):
        elapsed = self.clock() - self.started
        return progress_line(self.label, self.total, self.counts, elapsed, final=final)

    def _show(self, line, end=""):
        if self.is_tty:
            # Redraw in place, padded so a shorter line fully covers the previous one.
            line, self._drawn_width = "\r" + line.ljust(self._drawn_width), len(line)
        self.stream.write(line + end)
        self.stream.flush()  # stderr may be block-buffered when piped
