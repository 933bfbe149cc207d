"""Progress lines for long steps: quiet when quick, count, elapsed and remaining time when slow."""
import time

from stages.common.core.progress import Heartbeat, Progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_reports_counts_and_time_left_only_after_the_interval():
    clock, lines = FakeClock(), []
    progress = Progress("decoding", 100, every_s=10, clock=clock,
                        write=lambda line, flush: lines.append(line))
    clock.now += 5
    progress.advance(10)
    assert lines == []  # quick steps stay quiet
    clock.now += 20  # 40 images in 25 s: the other 60 take about 38 s
    progress.advance(30)
    assert lines == ["decoding: 40/100 (40%), 25 s elapsed, about 38 s left"]
    clock.now += 100
    progress.advance(60)  # finished: the caller prints its own summary
    assert len(lines) == 1


def test_heartbeat_says_a_long_call_is_still_running():
    lines = []
    with Heartbeat("converting", every_s=0.05, write=lambda line, flush: lines.append(line)):
        time.sleep(0.18)
    assert len(lines) >= 2 and lines[0].startswith("converting: still running, 0 s elapsed")
