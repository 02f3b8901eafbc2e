"""`fastlogit bench` checks every argument before the run starts (no timing
happens in these tests: each bad argument must be refused in well under a
second, before any benchmark), and its loaded-machine helpers clean up."""
from __future__ import annotations

import argparse

import pytest

from fastlogit import bench
from fastlogit.bench import command, load


def _args(*argv):
    parser = argparse.ArgumentParser(prog="fastlogit bench", exit_on_error=False)
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(autouse=True)
def _nothing_may_be_timed(monkeypatch):
    """Every entry point that times something fails the test if reached: a bad
    argument must be refused before any benchmark starts."""
    from fastlogit.bench import fit

    def timed(*args, **kwargs):
        raise AssertionError("a benchmark started before the arguments were refused")

    for owner, name in ((command, "run_case"), (command, "crossover"),
                        (load, "scaling_rows"), (fit, "run_fit_rows")):
        monkeypatch.setattr(owner, name, timed)


def _refused(capsys, *argv) -> str:
    assert bench.run(_args(*argv)) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_output_into_a_missing_folder_is_refused_first(tmp_path, capsys, option):
    target = str(tmp_path / "missing" / "out.png")
    err = _refused(capsys, option, target, "--quick")
    assert f"{option} {target}" in err and "does not exist" in err


def test_output_that_is_a_folder_is_refused(tmp_path, capsys):
    assert "is a folder" in _refused(capsys, "--json", str(tmp_path), "--quick")


def test_plot_without_matplotlib_is_refused_first(tmp_path, capsys, monkeypatch):
    real = command.importlib.util.find_spec
    monkeypatch.setattr(command.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    err = _refused(capsys, "--plot", str(tmp_path / "b.png"), "--quick")
    assert "needs matplotlib" in err


@pytest.mark.parametrize("argv, message", [
    (("--load", "1", "--crossover"), "choose one"),
    (("--load", "1", "--plot", "x.png"), "cannot be combined"),
    (("--crossover", "--threads", "1"), "at least 2 threads"),
])
def test_incompatible_options_are_refused(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert message in _refused(capsys, *argv)


@pytest.mark.parametrize("argv", [("--repeat", "0"), ("--repeat", "-3"), ("--repeat", "2.5"),
                                  ("--max-seconds", "0"), ("--max-seconds", "nan"),
                                  ("--load", "-1"), ("--m", "0"), ("--shapes", "10x")])
def test_bad_numbers_are_refused_by_the_parser(argv):
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        _args(*argv)


def test_good_arguments_pass_the_checks(tmp_path):
    args = _args("--json", str(tmp_path / "r.json"), "--repeat", "1", "--load", "0", "2")
    assert command.check_args(args) is None
    assert args.load == [0, 2] and args.repeat == 1


def test_the_run_says_how_long_it_takes():
    args = _args("--quick")
    quick = command.estimate_seconds(args, [1, 2], ())
    full = command.estimate_seconds(_args(), [1, 2], ())
    assert 0 < quick < full


def test_busy_processes_are_stopped_even_on_an_exception():
    with pytest.raises(RuntimeError):
        with load.busy_processes(2, 30) as procs:
            assert all(p.is_alive() for p in procs)
            raise RuntimeError("interrupted")
    assert not any(p.is_alive() for p in procs)


def test_busy_processes_stop_by_themselves_at_their_deadline():
    with load.busy_processes(1, 0.3) as procs:
        procs[0].join(timeout=10)
        assert not procs[0].is_alive()


@pytest.mark.parametrize("other", [["--crossover"], ["--load", "1"], ["--plot", "x.png"]])
def test_fit_rows_cannot_be_combined_with_another_run(tmp_path, capsys, other):
    err = _refused(capsys, "--fit", *other)
    assert "--fit" in err


def test_fit_rows_without_scikit_learn_are_refused_first(capsys, monkeypatch):
    real = command.importlib.util.find_spec
    monkeypatch.setattr(command.importlib.util, "find_spec",
                        lambda name, *a: None if name == "sklearn" else real(name, *a))
    assert "--fit needs sklearn" in _refused(capsys, "--fit")
