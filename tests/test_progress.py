"""Progress bar: counts, rate and ETA on a terminal, throttled plain lines in logs."""
import io

import pytest

from autograder.progress import Progress, clock_text, progress_line


class FakeClock:
    """A clock the test moves by hand, so no test sleeps."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_clock_text():
    """Minutes and seconds, hours only when needed."""
    assert [clock_text(s) for s in (0, 24, 65, 3723)] == ["0:00", "0:24", "1:05", "1:02:03"]


def test_terminal_line_shows_counts_rate_and_eta():
    """45 of 100 done in 20 s: 2.2/s, 55 left, ETA 0:24; the line is redrawn with \\r."""
    clock, stream = FakeClock(), Terminal()
    with Progress(100, stream=stream, label="02_gradient_step", clock=clock) as bar:
        for status in ["graded"] * 40 + ["flagged"] * 4 + ["error"]:
            bar.advance(status=status)
        clock.now += 20
        bar.advance(status="skipped")  # a resumed item: counted, but not toward the rate
        last = stream.getvalue().split("\r")[-1]
        assert last == ("02_gradient_step [#########...........]   46/100  "
                        "graded 40 flagged 4 error 1 skipped 1  2.2/s  ETA 0:24")
    assert stream.getvalue().endswith("done in 0:20\n")
    assert "\n" not in stream.getvalue()[:-1]  # one line, redrawn in place


def test_log_output_is_throttled_with_a_final_line():
    """Off a terminal: a line per 10% (or 5 s), never one per item, and always a final line."""
    clock, stream = FakeClock(), io.StringIO()
    with Progress(1000, stream=stream, label="a", clock=clock) as bar:
        for _ in range(1000):
            clock.now += 0.01
            bar.advance()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11
    assert "100/1000" in lines[0] and "ETA 0:09" in lines[0]
    assert lines[-1] == "a [####################]  1000/1000  graded 1000  100.0/s  done in 0:10"


def test_slow_batch_logs_every_few_seconds():
    """A batch slower than 10% per 5 s still prints a line every 5 s."""
    clock, stream = FakeClock(), io.StringIO()
    with Progress(100, stream=stream, clock=clock) as bar:
        for _ in range(6):
            clock.now += 2
            bar.advance()
    assert [line.split()[1] for line in stream.getvalue().splitlines()] == [
        "3/100", "6/100", "6/100"]


def test_zero_total_and_nothing_done():
    """An empty batch prints a full bar and no division by zero."""
    for stream in (io.StringIO(), Terminal()):
        with Progress(0, stream=stream, label="empty", clock=FakeClock()):
            pass
        assert stream.getvalue().split("\r")[-1] == (
            "empty [####################]  0/0  0.0/s  done in 0:00\n")


def test_eta_unknown_before_any_work():
    """Only skipped items so far: no rate yet, so no ETA is promised."""
    line = progress_line("x", 10, {"skipped": 3}, 5.0)
    assert line.endswith("0.0/s  ETA ?")


def test_unknown_status_is_refused():
    with Progress(1, stream=io.StringIO(), clock=FakeClock()) as bar:
        with pytest.raises(ValueError):
            bar.advance(status="passed")
