import subprocess
from pathlib import Path

import pytest
import torch

from cl_bench.devices import code_version, cpu_model, environment, machine, resolve_device
from cl_bench.errors import CLBenchError


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_code_version_is_the_commit_and_says_when_python_files_changed(tmp_path):
    assert code_version(tmp_path) == "unknown"
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "runs.csv").write_text("a\n")
    _git(tmp_path, "add", "a.py", "runs.csv")
    _git(tmp_path, "commit", "-qm", "a")
    commit = _git(tmp_path, "rev-parse", "--short", "HEAD")
    (tmp_path / "untracked.txt").write_text("results\n")
    (tmp_path / "runs.csv").write_text("a\nb\n")  # results change, the code does not
    assert code_version(tmp_path) == commit
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path) == f"{commit}-dirty"


def test_environment_names_device_code_and_libraries():
    env = environment(torch.device("cpu"))
    assert env["device"] == f"CPU ({cpu_model()})"
    assert env["cl_bench"]
    assert env["torch"].startswith(torch.__version__.split("+")[0])


def test_the_cpu_is_named_by_its_model_and_threads(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC\n")
    assert cpu_model(cpuinfo) == "AMD EPYC"
    assert cpu_model(tmp_path / "absent") not in ("", "AMD EPYC")  # what platform knows, never empty
    assert machine(torch.device("cpu")) == f"CPU ({cpu_model()}), {torch.get_num_threads()} threads"


def test_unavailable_devices_are_one_line_errors():
    with pytest.raises(CLBenchError, match="unknown device"):
        resolve_device("quantum")
    if not torch.cuda.is_available():
        with pytest.raises(CLBenchError, match="CUDA is not available"):
            resolve_device("cuda")


def test_a_run_records_the_code_version_its_process_imported(tmp_path, monkeypatch):
    """The version is the code the process imported, not the checkout's state when a run starts or ends
    (a grid's Ray worker runs several runs with the modules it imported for the first)."""
    from cl_bench.config import load_config
    from cl_bench.experiment import runner

    assert code_version() == runner.IMPORTED_CODE  # read when the module was imported
    monkeypatch.setattr(runner, "IMPORTED_CODE", "abc1234")
    monkeypatch.setattr(runner, "code_version", lambda: "def5678-dirty")  # the checkout moved on
    config = load_config(Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml")
    config.train.epochs, config.run.out, config.run.logger = 1, str(tmp_path), "none"
    outcome = runner.run_experiment(config, log=lambda _: None)
    assert outcome.summary["environment"]["cl_bench"] == "abc1234"
    assert runner._code_versions(["abc1234"], "def5678") == ["abc1234", "def5678"]
    assert runner._code_versions(["abc1234"], "abc1234") == ["abc1234"]
