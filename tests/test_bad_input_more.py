"""Bad input, part two (issue 29, item 5): silent wrong results, `data check` missing what training trips
on, runs.csv rows that lie, a kill between the weights and their card, a grid too large to plan.
docs/reliability.md lists each case (rows 20 to 24) and what the user sees."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from cl_bench.config import Config, DataConfig
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError, DataError
from cl_bench.results import runs_row, summarize, upsert_run
from scenarios.check import check_data, validate_data
from scenarios.coco_det import CocoDetSplit
from scenarios.common import read_rgb
from scenarios.layout import resolve_data
from tests import builders as b


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    from cl_bench.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def copy_data(synthetic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_root, tmp_path / "data"))


def errors_of(root: Path, **data) -> list[str]:
    _, checks = check_data(DataConfig(root=str(root), **data), verify=False, progress=False)
    return [error for check in checks for error in check.errors]


# ---- 1a: an explicit data folder and data.synthetic: true ----------------------------------------------

def test_20a_a_data_root_flag_wins_over_the_configs_synthetic(synthetic_root, tmp_path):
    from cl_bench.cli import build_parser
    from cl_bench.cli.arguments import config_from_args

    config_file = tmp_path / "synthetic.yaml"
    config_file.write_text("data:\n  synthetic: true\n")
    args = build_parser(None).parse_args(["--config", str(config_file), "--data-root", str(synthetic_root)])
    config = config_from_args(args)
    assert config.data.synthetic is False and config.data.root == str(synthetic_root)
    source = resolve_data(config.data)
    assert not source.synthetic and source.roots["det"] == synthetic_root / "mini_coco_det"
    args = build_parser(None).parse_args(["--config", str(config_file), "--det-root",
                                          str(synthetic_root / "mini_coco_det")])
    assert config_from_args(args).data.synthetic is False


def test_20a_synthetic_and_a_data_folder_together_are_an_error(synthetic_root, capsys):
    code, _, err = in_process(capsys, "data", "check", "--quick", "--synthetic", "--data-root", str(synthetic_root))
    assert code == 1 and err == (f"error: --synthetic and --data-root {synthetic_root} contradict each other: "
                                 "give one of them\n")
    with pytest.raises(DataError, match=f"data.synthetic is true and data.root {synthetic_root} is given"):
        resolve_data(DataConfig(root=str(synthetic_root), synthetic=True))
    with pytest.raises(DataError, match="data.synthetic is true and data.roots.det /x is given"):
        resolve_data(DataConfig(roots={"det": "/x"}, synthetic=True))
    assert resolve_data(DataConfig(root="synthetic", synthetic=True)).synthetic  # naming the default agrees


# ---- 1b: a detection training split without annotations -----------------------------------------------

@pytest.mark.parametrize("classes", [None, ["person"]])
def test_20b_a_detection_training_split_without_boxes_is_refused(tmp_path, classes):
    root = tmp_path / "data"
    b.challenge_root(root)
    labels = root / "mini_coco_det" / "train" / "labels.json"
    data = json.loads(labels.read_text())
    data["annotations"] = [] if classes is None else [a for a in data["annotations"] if a["category_id"] != 1]
    labels.write_text(json.dumps(data))
    expected = (f"{labels}: no annotations (or only crowd ones): no detection class to train" if classes is None
                else f"{labels}: no annotations of its classes (person) in training split 'train': nothing to train")
    config = DataConfig(root=str(root), classes={"det": classes} if classes else {})
    assert errors_of(root, classes=config.classes) == [expected]
    with pytest.raises(DataError) as error:
        validate_data(config, {}, log=lambda line: None)
    assert str(error.value) == expected


def test_20b_data_check_cli_exits_1_on_it(tmp_path, capsys):
    root = b.challenge_root(tmp_path / "data")
    labels = root / "mini_coco_det" / "train" / "labels.json"
    labels.write_text(json.dumps({**json.loads(labels.read_text()), "annotations": []}))
    code, out, _ = in_process(capsys, "data", "check", "--quick", "--data-root", str(root))
    assert code == 1 and f"{labels}: no annotations (or only crowd ones)" in out


# ---- 1c: NaN / inf boxes ----------------------------------------------------------------------------------

def test_20c_non_finite_boxes_are_dropped_with_a_warning_everywhere(tmp_path):
    data = b.coco_json(b.CATS, [[(1, [1, 1, 20, 20]), (1, [2, 2, 10, 10])], [(3, [0, 0, 30, 30])]])
    data["annotations"][1]["bbox"] = [2, float("nan"), 10, 10]
    data["annotations"][2]["bbox"] = [0, 0, float("inf"), 30]
    root = b.det_split(tmp_path / "det", "train", data)
    labels = root / "train" / "labels.json"
    assert "NaN" in labels.read_text() and "Infinity" in labels.read_text()  # what json.dumps writes
    split = CocoDetSplit(root, "train", ["person", "car"])
    report = split.report()
    assert report.stats["boxes"] == 1 and report.stats["dropped: non-finite (NaN or inf)"] == 2
    assert report.warnings == [f"{labels}: annotation 2 dropped: non-finite bbox [2, nan, 10, 10] (NaN or inf)",
                               f"{labels}: annotation 3 dropped: non-finite bbox [0, 0, inf, 30] (NaN or inf)"]
    # training's targets and evaluation's ground truth hold the same single box
    assert [len(split[i][1]["boxes"]) for i in range(len(split))] == [1, 0]
    assert [a["bbox"] for a in split.coco_ground_truth["annotations"]] == [[1.0, 1.0, 20.0, 20.0]]


def test_20c_a_non_finite_area_is_the_boxes_own(tmp_path):
    data = b.coco_json(b.CATS, [[(1, [1, 1, 20, 10])]])
    data["annotations"][0]["area"] = float("nan")
    root = b.det_split(tmp_path / "det", "train", data)
    assert CocoDetSplit(root, "train", ["person"]).coco_ground_truth["annotations"][0]["area"] == 200.0


# ---- 1d: 16-bit greyscale images ----------------------------------------------------------------------

def test_20d_a_16_bit_greyscale_png_is_scaled_to_8_bit(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    image = read_rgb(path)
    assert image.shape == (3, 1, 4)
    assert image[0].tolist() == [[0, 1, 128, 255]] and (image[0] == image[1]).all()


def test_20d_a_16_bit_image_in_a_classification_split_is_not_white(tmp_path):
    from scenarios.imagenette import ImagenetteSplit

    root = b.cls_folders(tmp_path / "cls", {"train": 1}, ["a"])
    path = next((root / "train" / "a").iterdir())
    path.unlink()
    Image.fromarray(np.full((30, 40), 4000, dtype=np.uint16)).save(path.with_suffix(".png"))
    image, _ = ImagenetteSplit(root, "train", ["a"])[0]
    assert int(image.max()) == round(4000 / 257)


# ---- 2: data check and training share one validation --------------------------------------------------

def test_21_a_missing_val_split_is_an_error_of_data_check(tmp_path):
    root = b.challenge_root(tmp_path / "data")
    shutil.rmtree(root / "imagenette_160" / "val")
    assert errors_of(root) == [f"{root / 'imagenette_160'}: no split 'val' (splits found: train)"]
    assert errors_of(root, test_split="train") == []
    assert errors_of(root, tune_split=1) == []  # evaluation then reads images held out of train


def test_21_an_image_listed_twice_is_an_error(tmp_path):
    data = b.coco_json(b.CATS, [[(1, [1, 1, 20, 20])], [(3, [0, 0, 30, 30])]])
    data["images"][1]["id"] = 1
    root = b.det_split(tmp_path / "a", "train", data)
    with pytest.raises(DataError, match=r"labels.json: image id 1 is listed twice \(an id names one image\)$"):
        CocoDetSplit(root, "train", ["person"])
    data = b.coco_json(b.CATS, [[(1, [1, 1, 20, 20])], [(3, [0, 0, 30, 30])]])
    data["images"][1]["file_name"] = "img0.jpg"
    root = b.det_split(tmp_path / "b", "train", data)
    with pytest.raises(DataError, match="labels.json: images 1 and 2 name the same file img0.jpg"):
        CocoDetSplit(root, "train", ["person"])


def test_21_data_check_reports_a_duplicate_in_the_val_split(tmp_path, capsys):
    root = b.challenge_root(tmp_path / "data")
    labels = root / "mini_coco_det" / "val" / "labels.json"
    data = json.loads(labels.read_text())
    data["images"].append({**data["images"][0], "id": 99})
    labels.write_text(json.dumps(data))
    code, out, _ = in_process(capsys, "data", "check", "--quick", "--data-root", str(root))
    assert code == 1 and f"{labels}: images 1 and 99 name the same file img0.jpg" in out


# ---- 3: runs.csv rows checked against summary.json -----------------------------------------------------

def _run(root: Path, run_id: str, seed: int, final_det: float) -> dict:
    """A finished run's folder (summary.json, config.yaml) and its runs.csv row, without training."""
    order = ["seg", "det", "cls"]
    R = pd.DataFrame([[0.5, np.nan, np.nan], [0.45, 0.4, np.nan], [0.44, final_det, 0.8]],
                     index=[f"after {t}" for t in order], columns=order)
    summary = {"run_id": run_id, "strategy": "naive", "seed": seed, "train_time_s": 12.5, "params": 1234,
               **summarize(R, order), "secondary": summarize(R, order)}
    config = to_dict(Config())
    config["run"]["seed"], config["strategy"]["name"] = seed, "naive"
    (root / run_id).mkdir(parents=True)
    (root / run_id / "summary.json").write_text(json.dumps(summary))
    (root / run_id / "config.yaml").write_text(yaml.safe_dump(config))
    meta = {"run_id": run_id, "strategy": "naive", "seed": seed, "order": ",".join(order),
            "backbone": config["model"]["backbone"], "bn_policy": config["train"]["bn_policy"],
            "image_size": config["data"]["image_size"], "epochs": "seg:1;det:1;cls:1",
            "train_time_s": 12.5, "params": 1234}
    upsert_run(root / "runs.csv", runs_row(summary, meta))
    return summary


@pytest.fixture
def three_runs(tmp_path) -> Path:
    root = tmp_path / "results"
    for seed, final in ((0, 0.2), (1, 0.3), (2, 0.4)):
        _run(root, f"naive_s{seed}", seed, final)
    return root


def _load(root: Path):
    from cl_bench.report.collect import load_results

    return load_results(root)


def test_22_an_intact_runs_csv_needs_no_repair(three_runs):
    results = _load(three_runs)
    assert len(results.runs) == 3 and results.warnings == []


def test_22_a_cut_last_row_is_rebuilt_from_summary_json(three_runs):
    runs_csv = three_runs / "runs.csv"
    text = runs_csv.read_text().rstrip("\n")
    runs_csv.write_text(text[: text.rindex("\n") + 40])  # the last row cut after 40 characters
    results = _load(three_runs)
    assert len(results.runs) == 3 and sorted(results.runs["seed"]) == [0, 1, 2]
    assert results.runs.set_index("run_id").loc["naive_s2", "final_mAP"] == pytest.approx(0.4)
    [warning] = results.warnings
    assert warning.startswith(f"{runs_csv} line 4 (run naive_s2): cut short: ")
    assert warning.endswith("; rebuilt from its summary.json and config.yaml")


def test_22_an_extra_field_and_a_nan_are_rebuilt(three_runs):
    runs_csv = three_runs / "runs.csv"
    table = pd.read_csv(runs_csv)
    table.loc[1, "final_mAP"] = math.nan
    table.to_csv(runs_csv, index=False, na_rep="nan")
    lines = runs_csv.read_text().splitlines()
    lines[3] += ",surplus"
    runs_csv.write_text("\n".join(lines) + "\n")
    results = _load(three_runs)
    assert list(results.runs.sort_values("seed")["final_mAP"]) == pytest.approx([0.2, 0.3, 0.4])
    assert results.warnings == [
        f"{runs_csv} line 3 (run naive_s1) disagreed with its summary.json/config.yaml (final_mAP nan vs 0.3); "
        "rebuilt from them",
        f"{runs_csv} line 4 (run naive_s2): an extra field: {len(table.columns) + 1} fields, expected "
        f"{len(table.columns)}; rebuilt from its summary.json and config.yaml"]


def test_22_an_empty_runs_csv_is_rebuilt_from_the_run_folders(three_runs, capsys):
    runs_csv = three_runs / "runs.csv"
    runs_csv.write_text("")
    results = _load(three_runs)
    assert sorted(results.runs["run_id"]) == ["naive_s0", "naive_s1", "naive_s2"]
    assert results.warnings == [f"{runs_csv}: empty (0 bytes); its rows rebuilt from the summary.json of the 3 "
                                f"run folder(s) in {three_runs}"]


def test_22_a_list_or_truncated_summary_leaves_its_run_out_with_one_line(three_runs, tmp_path, capsys):
    (three_runs / "naive_s0" / "summary.json").write_text("[]")
    summary = three_runs / "naive_s1" / "summary.json"
    summary.write_text(summary.read_text()[:50])
    results = _load(three_runs)
    assert list(results.runs["run_id"]) == ["naive_s2"]
    assert results.warnings[0] == (f"run naive_s0 left out: {three_runs / 'naive_s0' / 'summary.json'}: not a run's "
                                   "summary.json (its top level is a list, expected a mapping)")
    assert results.warnings[1].startswith(f"run naive_s1 left out: {summary}: unreadable, cut short or damaged? (")
    # nothing left to report: one error line, no traceback
    (three_runs / "naive_s2" / "summary.json").write_text("")
    code, _, err = in_process(capsys, "report", "--results", str(three_runs), "--out", str(tmp_path / "report"))
    assert code == 1 and err.count("\n") == 1 and err.startswith(f"error: {three_runs / 'runs.csv'}: no finished run")


def test_22_a_zero_byte_runs_csv_without_runs_is_one_line(tmp_path, capsys):
    (tmp_path / "runs.csv").write_text("")
    code, _, err = in_process(capsys, "report", "--results", str(tmp_path), "--out", str(tmp_path / "report"))
    assert code == 1 and err == (f"error: {tmp_path / 'runs.csv'}: no finished run to report ({tmp_path / 'runs.csv'}: "
                                 f"empty (0 bytes); its rows rebuilt from the summary.json of the 0 run folder(s) in "
                                 f"{tmp_path})\n")


# ---- 4: the weights and their card -------------------------------------------------------------------

def test_23_a_kill_after_the_weights_land_leaves_no_card_of_another_run(tmp_path, monkeypatch):
    from cl_bench.digest import sha256_file
    from cl_bench.report import export

    out, card = tmp_path / "best.pt", tmp_path / "best.card.json"
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    old.write_bytes(b"old weights")
    new.write_bytes(b"new weights")
    export.write_pair(out, old, card, '{"run": "old"}\n', sha256_file(old))
    assert out.read_bytes() == b"old weights" and json.loads(card.read_text()) == {"run": "old"}

    def killed(path, text):
        raise SystemExit("killed")  # stands in for a kill between the weights and the card
    monkeypatch.setattr(export, "write_text", killed)
    with pytest.raises(SystemExit):
        export.write_pair(out, new, card, '{"run": "new"}\n', sha256_file(new))
    assert out.read_bytes() == b"new weights" and not card.exists()  # weights without a card, never a wrong card
    monkeypatch.undo()

    def full_disk(source, target):
        raise OSError(28, "No space left on device")
    export.write_pair(out, old, card, '{"run": "old"}\n', sha256_file(old))
    monkeypatch.setattr(export.shutil, "copyfile", full_disk)
    with pytest.raises(CLBenchError, match=f"{out}: cannot write \\(No space left on device\\)"):
        export.write_pair(out, new, card, '{"run": "new"}\n', sha256_file(new))
    assert out.read_bytes() == b"old weights" and json.loads(card.read_text()) == {"run": "old"}  # as before


# ---- 5: a grid too large to plan ---------------------------------------------------------------------

def test_24_a_huge_seed_range_is_refused_at_once():
    from cl_bench.grid.plan import MAX_RUNS, parse_seeds

    with pytest.raises(CLBenchError, match=f"^--seeds 0-9999999: 10000000 seeds, more than a grid's {MAX_RUNS} runs; "
                                           "narrow the seeds, or pass --allow-large to run them all$"):
        parse_seeds("0-9999999")
    assert parse_seeds("0-4,2-6,9") == [0, 1, 2, 3, 4, 5, 6, 9]
    assert len(parse_seeds("0-10000", limit=None)) == 10001
    assert len(parse_seeds("1-10000")) == MAX_RUNS  # the cap itself is allowed


def test_24_plan_runs_refuses_a_large_grid_before_planning_any():
    from cl_bench.grid.plan import GridSpec, grid_size, plan_runs

    spec = GridSpec(["naive", "ewc"], list(range(2000)), [["seg", "det", "cls"], ["cls", "det", "seg"]],
                    vary={"train.lr": ["0.1", "0.01"]})
    assert grid_size(spec) == 16000

    def configure(assignments):
        raise AssertionError("planned")
    with pytest.raises(CLBenchError, match="^the grid has 16000 runs, more than 10000; narrow its strategies, seeds, "
                                           "orders or --set values, or pass --allow-large to plan them all$"):
        plan_runs(spec, configure)
    with pytest.raises(AssertionError, match="planned"):
        plan_runs(spec, configure, allow_large=True)


def test_24_grid_cli_states_the_size_and_refuses(tmp_path, capsys):
    code, out, err = in_process(capsys, "grid", "--strategies", "naive", "--seeds", "0-9999999", "--out",
                                str(tmp_path))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: --seeds 0-9999999: 10000000 seeds, more than a grid's 10000 runs")
    code, out, err = in_process(capsys, "grid", "--strategies", "naive,ewc", "--seeds", "0-5999", "--out",
                                str(tmp_path))
    assert code == 1 and out == "" and err.startswith("error: the grid has 12000 runs, more than 10000;")


def test_24_a_grid_of_many_runs_is_announced_before_it_is_planned(tmp_path, capsys, monkeypatch):
    from cl_bench.cli import grid_command

    def stop(*args):
        raise CLBenchError("stopped before planning")
    monkeypatch.setattr(grid_command, "plan_runs", stop)
    code, out, _ = in_process(capsys, "grid", "--strategies", "naive", "--seeds", "0-19999", "--allow-large",
                              "--out", str(tmp_path))
    assert code == 1 and out == "grid: planning 20000 runs ...\n"
