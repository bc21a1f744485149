"""Progress bars (issue 10 item 14): throttled off a terminal, one helper for the whole package."""

import io
import re
import time
from pathlib import Path

from pyro_vje.progress import OFF_TTY_INTERVAL_S, progress_bar

PACKAGE = Path(__file__).resolve().parents[1] / "pyro_vje"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _updates(stream: io.StringIO) -> int:
    return stream.getvalue().count("\r")


def _run(stream: io.StringIO, steps: int = 200) -> None:
    for _ in progress_bar(range(steps), file=stream, desc="t"):
        time.sleep(0.002)  # 0.4 s in all: a terminal bar redraws every 0.1 s


def test_off_a_terminal_a_short_loop_writes_only_its_first_and_last_update():
    log = io.StringIO()
    _run(log)
    assert OFF_TTY_INTERVAL_S >= 10
    assert _updates(log) <= 3, log.getvalue()
    assert "200/200" in log.getvalue()  # the final count still reaches the log


def test_on_a_terminal_the_bar_redraws_as_usual():
    tty = _Terminal()
    _run(tty)
    assert _updates(tty) >= 3


def test_disabled_bar_writes_nothing():
    log = io.StringIO()
    for _ in progress_bar(range(10), enabled=False, file=log):
        pass
    assert log.getvalue() == ""


def test_every_bar_of_the_package_goes_through_the_helper():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "progress.py" and re.search(r"^\s*(from|import) tqdm", path.read_text(), re.M)
    ]
    assert offenders == []
