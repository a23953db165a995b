"""The notebooks run top to bottom (so they cannot rot) and are committed without outputs.

Each is executed with nbclient into a temporary copy; the committed file is never
written. The ``python3`` kernel is pinned to the interpreter running the tests (the
project's virtualenv under ``make test``) by a kernel spec put first on
``JUPYTER_PATH``, so a stray ``python3`` kernel in a user's Jupyter folders cannot
run them with another Python.
"""

import json
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
TIMEOUT = 600  # seconds per cell; 04 takes about five minutes over the full corpus


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A ``python3`` kernel spec running ``sys.executable``, first on JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (tests)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))
        yield


def execute(notebook, cwd: Path):
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=TIMEOUT,
        resources={"metadata": {"path": str(cwd)}},
    )
    return client.execute()


def test_there_are_four_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_reference_case.ipynb",
        "02_field_weights.ipynb",
        "03_score_distribution.ipynb",
        "04_baselines.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: strip outputs"
            )
    assert notebook.metadata.kernelspec.name == "python3"


def test_the_kernel_is_this_python(kernel_env, tmp_path):
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")]
    )
    execute(notebook, tmp_path)
    printed = notebook.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, kernel_env, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    execute(notebook, path.parent)  # raises CellExecutionError, with the cell, on failure
    nbformat.write(notebook, tmp_path / path.name)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if path.stem in {"02_field_weights", "03_score_distribution", "04_baselines"}:
        assert any("image/png" in o.get("data", {}) for o in outputs), "the plot is missing"
