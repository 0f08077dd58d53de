"""`run_bench.py data check` on good and bad data: tables, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from run_bench import main
from tests import builders as b

REPO = Path(__file__).resolve().parents[1]


def test_data_check_summarises_a_good_root(tmp_path, capsys):
    root = b.challenge_root(tmp_path / "data")
    assert main(["data", "check", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "segmentation train       3" in out and "detection   val       2" in out
    assert "boxes per class: person 3, car 2, dog 1" in out
    assert "no problems found" in out


def test_data_check_lists_problems_and_exits_1(tmp_path, capsys):
    root = b.challenge_root(tmp_path / "data")
    (root / "mini_voc_seg" / "val" / "img1.jpg").write_bytes(b"broken")
    assert main(["data", "check", "--data-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "1 problem(s) found:" in out
    assert f"{root / 'mini_voc_seg' / 'val' / 'img1.jpg'}: corrupt or unreadable image" in out


def test_bad_root_is_one_line_on_stderr_with_exit_1(tmp_path):
    result = subprocess.run([sys.executable, "run_bench.py", "data", "check", "--data-root", str(tmp_path / "x")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'x'}: data root not found"


def test_broken_json_is_one_line(tmp_path, capsys):
    root = b.challenge_root(tmp_path / "data")
    (root / "mini_coco_det" / "train" / "labels.json").write_text("{oops")
    assert main(["data", "check", "--data-root", str(root), "--quick"]) == 1
    out = capsys.readouterr().out
    assert "labels.json: not valid JSON (Expecting property name enclosed in double quotes at line 1 column 2)" in out
