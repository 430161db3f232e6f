"""The README's quickstart is code that runs and does what its comments say."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _quickstart_code() -> str:
    text = README.read_text()
    section = text[text.index("## Quickstart"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_quickstart_runs_and_prints_the_notes_parameter_count_and_a_trained_accuracy():
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(_quickstart_code(), "README.md:quickstart", "exec"), namespace)
    lines = out.getvalue().splitlines()
    assert lines[0] == "13002"
    assert namespace["state"].step == 3 * (8000 // 16)
    metrics = namespace["training"].evaluate(
        namespace["state"].params, *namespace["load_mnist"]("test[8000:]"), loss_fn=namespace["loss_fn"]
    )
    # Three epochs of the notes' setup already classify most held-out digits.
    assert float(metrics["accuracy"]) > 0.80
