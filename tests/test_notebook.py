"""examples/colab.ipynb, the challenge workflow as a notebook, runs top to bottom with Jupyter's executor
(nbclient) on the synthetic default: its parameters cell overridden as papermill does (a cell injected after
the one tagged `parameters`) to 64 px, one epoch per task, CPU, the smoke config and a temporary results
folder. The kernel runs inside the checkout, so the install cell finds cl_bench installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "colab.ipynb"

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install nbformat)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install nbclient)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed: no Python kernel (pip install ipykernel)")


def read_notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def parameters_index(notebook) -> int:
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{NOTEBOOK.name}: expected one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def with_parameters(notebook, values: dict):
    """The notebook with a cell setting ``values`` right after its parameters cell (papermill's way)."""
    index = parameters_index(notebook)
    source = "# injected by tests/test_notebook.py\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, cell)
    return notebook


def test_the_notebook_is_committed_without_outputs_and_with_its_parameters():
    notebook = read_notebook()
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [cell.source[:40] for cell in code if cell.outputs or cell.execution_count is not None]
    parameters = notebook.cells[parameters_index(notebook)].source
    for name in ("IMAGE_SIZE = 512", "EPOCHS = None", 'DATA_ROOT = "data"', 'DEVICE = "cuda"',
                 'STRATEGY = "mas+der"', 'RESULTS = "results/colab"', 'CONFIG = "experiments/challenge.yaml"'):
        assert name in parameters
    assert (ROOT / "experiments" / "challenge.yaml").is_file()


def test_the_notebook_runs_top_to_bottom_on_the_synthetic_default(tmp_path):
    results, weights = tmp_path / "results", tmp_path / "best_model.pt"
    notebook = with_parameters(read_notebook(), {
        "CONFIG": "experiments/smoke.yaml", "IMAGE_SIZE": 64, "EPOCHS": 1, "DATA_ROOT": "synthetic",
        "DEVICE": "cpu", "RESULTS": str(results), "WEIGHTS": str(weights), "LATENCY": False,
    })
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:  # the failing cell and its traceback
        pytest.fail(f"{NOTEBOOK.name} failed:\n{error}")

    assert weights.is_file() and weights.with_suffix(".card.json").is_file()
    assert (results / "report" / "report.md").is_file()
    strategies = {json.loads(p.read_text())["strategy"] for p in results.glob("*/summary.json")}
    assert strategies == {"mas+der", "single_task"}
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    text = "".join(output.get("text", "") for output in outputs)
    assert "cl_bench and its requirements are installed" in text  # the install cell skipped
    assert "segmentation      mIoU" in text  # eval.py's table
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    # final_metrics.png and stages.png always; stability_plasticity.png when every single-task final is above
    # 0 (after one epoch the detector's mAP may be 0)
    figures = results / "report" / "figures"
    shown = [name for name in ("stability_plasticity.png", "final_metrics.png", "stages.png")
             if (figures / name).is_file()]
    assert {"final_metrics.png", "stages.png"} <= set(shown) and len(images) == len(shown)
