"""Progress: a tqdm bar on a terminal, plain lines when stderr is a file or a pipe."""

from __future__ import annotations

import io

from recommender.infra import PlainProgress, progress
from recommender.pipelines import build_index
from tests.factories import write_studies


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_whole_lines_now_and_then_and_at_the_end():
    log, clock = io.StringIO(), Clock()
    bar = PlainProgress(total=200, desc="reading", unit="items", file=log, interval=30, clock=clock)
    for _ in range(100):
        clock.now += 0.5  # 50 s over 100 items: one line at 30 s
        bar.update()
    bar.close()
    bar.close()  # the last line is written once
    assert log.getvalue().splitlines() == [
        "reading: 60 of 200 items (30%), 30 s",
        "reading: 100 items in 50.0 s",
    ]


def test_iterating_counts_and_ends_with_a_line():
    log = io.StringIO()
    assert list(progress(range(5), desc="stage", unit="trials", file=log)) == list(range(5))
    assert log.getvalue().startswith("stage: 5 trials in ")
    assert "\r" not in log.getvalue()


def test_a_terminal_gets_a_bar():
    screen = Terminal()
    with progress(total=3, desc="stage", unit="trials", file=screen) as bar:
        bar.update(3)
    assert "\r" in screen.getvalue() and "3/3" in screen.getvalue()


def test_a_build_logged_to_a_file_writes_plain_stage_lines(tmp_path, capsys):
    source = write_studies(tmp_path / "studies")
    build_index([source], tmp_path / "ix", k=2, n_jobs=1, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert any(line.startswith("studies: 9 items in ") for line in lines)
    assert any(line.startswith("neighbours: 9 trials in ") for line in lines)
