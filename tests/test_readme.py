"""The README's code runs as pasted (issue 10 item 15)."""

import re
from pathlib import Path

import pyro
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_under(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block under {heading!r}"
    return match.group(1)


def test_api_in_ten_lines_runs_as_pasted():
    code = _python_block_under("## API in ten lines")
    pyro.clear_param_store()
    torch.manual_seed(0)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own snippet
    z, loss = namespace["z"], namespace["loss"]
    assert z.ndim == 2 and torch.isfinite(z).all()
    assert loss.ndim == 0 and torch.isfinite(loss)
