"""Logging and progress: quiet as a library, plain lines where output is not a terminal."""

import logging
import os
import subprocess
import sys

from sealft import logs
from sealft.cli import main
from sealft.progress import PlainProgress, progress_bar


def test_plain_progress_logs_lines_not_bar_frames(caplog):
    caplog.set_level(logging.INFO, logger="sealft")
    bar = PlainProgress(range(4), desc="selector epoch 1/2", interval=0.0)
    for _ in bar:
        bar.set_postfix(safe="0.500")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("selector epoch 1/2: 1/4 (") and "left) safe=0.500" in lines[0]
    assert lines[-1].startswith("selector epoch 1/2: 4/4 (")
    assert not any("\r" in line for line in lines)


def test_plain_progress_waits_for_its_interval(caplog):
    caplog.set_level(logging.INFO, logger="sealft")
    bar = PlainProgress(total=1000, desc="fine-tune", interval=3600)
    for _ in range(1000):
        bar.update()
    bar.close()
    bar.close()
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["fine-tune: 1000/1000"]


def test_progress_is_plain_off_a_terminal_and_silent_when_off(caplog):
    # pytest's captured stderr is not a terminal, like a log file or a CI console.
    assert isinstance(progress_bar(range(3), desc="x"), PlainProgress)
    caplog.set_level(logging.INFO, logger="sealft")
    assert list(progress_bar(range(3), desc="x", enabled=False)) == [0, 1, 2]
    assert not caplog.records


def test_the_library_logs_nothing_until_an_application_configures_it():
    code = (
        "import logging, sealft; log = logging.getLogger('sealft.recipes.select'); "
        "log.info('info'); log.warning('warning')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""


def test_cli_verbosity_flags(capsys):
    log = logging.getLogger("sealft.test")
    try:
        for flags, shown in (([], {"info", "warning"}), (["-q"], {"warning"})):
            main(["report", "/nonexistent/run", *flags])
            capsys.readouterr()
            log.debug("debug")
            log.info("info")
            log.warning("warning")
            err = capsys.readouterr().err
            assert {w for w in ("debug", "info", "warning") if w in err} == shown
        main(["report", "/nonexistent/run", "--verbose"])
        assert logging.getLogger("sealft").level == logging.DEBUG
    finally:
        logs.configure("normal")


def test_warnings_go_to_the_log_with_their_level():
    # In a fresh interpreter: pytest routes warnings through its own machinery.
    code = (
        "import warnings; from sealft import logs; logs.configure('normal'); "
        "warnings.warn(\"config key 'train' is deprecated\", FutureWarning)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "warning: " in done.stderr and "'train' is deprecated" in done.stderr


def test_other_libraries_bars_are_silenced_and_restored(capsys):
    import types

    from tqdm import tqdm

    from sealft.progress import without_bars

    library = types.SimpleNamespace(tqdm=tqdm)
    with without_bars(library):
        for _ in library.tqdm(range(3), desc="de-quantizing"):
            pass
    assert "de-quantizing" not in capsys.readouterr().err
    assert library.tqdm is tqdm


def test_hugging_face_bars_are_off_when_progress_is(monkeypatch):
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    try:
        main(["report", "/nonexistent/run", "--no-progress"])
    finally:
        logs.configure("normal")
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
