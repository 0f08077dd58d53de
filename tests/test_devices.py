import subprocess

import pytest
import torch

from cl_bench.devices import code_version, environment, resolve_device
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
    assert env["device"] == "CPU"
    assert env["cl_bench"]
    assert env["torch"].startswith(torch.__version__.split("+")[0])


def test_unavailable_devices_are_one_line_errors():
    with pytest.raises(CLBenchError, match="unknown device"):
        resolve_device("quantum")
    if not torch.cuda.is_available():
        with pytest.raises(CLBenchError, match="CUDA is not available"):
            resolve_device("cuda")
