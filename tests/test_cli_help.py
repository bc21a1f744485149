"""The command line's help and start-up (issue 10, items 12, 13 and 19): fast, and true to what runs."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pyro_vje.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _default_shown(help_text: str, flag: str) -> str:
    """The '(default: X)' of ``flag`` in an argparse help text."""
    flat = " ".join(help_text.split())
    start = flat.index(f" {flag} {flag[2:].upper().replace('-', '_')} ")  # the option's line, not usage
    return flat[flat.index("(default: ", start) + len("(default: ") :].split(")", 1)[0]


def test_top_level_help_imports_no_heavy_module():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['pyro_vje', '--help']\n"
        "try:\n"
        "    runpy.run_module('pyro_vje', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'pyro', 'torchvision', 'sklearn', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "usage: pyro-vje" in out.stdout
    assert "HEAVY []" in out.stdout, out.stdout[-300:]


def test_train_help_shows_the_config_files_values(capsys):
    config = ROOT / "configs" / "cifar10_resnet18.yaml"
    expected = yaml.safe_load(config.read_text())
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "--help"])
    text = capsys.readouterr().out
    assert _default_shown(text, "--epochs") == str(expected["epochs"])
    assert _default_shown(text, "--arch") == expected["arch"]
    assert _default_shown(text, "--dataset") == expected["dataset"]


def test_example_help_shows_the_recipe_it_runs(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_cifar", ROOT / "examples" / "train_cifar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit):
        module.main(["--help"])
    text = capsys.readouterr().out
    assert _default_shown(text, "--epochs") == "800"
    assert _default_shown(text, "--arch") == "resnet18"


def test_one_class_help_shows_its_preset(capsys):
    from pyro_vje.protocols.presets import DIGITS_ONE_CLASS, PAPER_ONE_CLASS

    with pytest.raises(SystemExit):
        main(["one-class", "--help"])
    text = capsys.readouterr().out
    for key in ("df", "epochs", "batch_size", "lr"):
        assert _default_shown(text, "--" + key.replace("_", "-")) == str(DIGITS_ONE_CLASS[key])
    with pytest.raises(SystemExit):
        main(["sweep", "--dataset", "cifar10", "--help"])
    text = capsys.readouterr().out
    assert _default_shown(text, "--epochs") == str(PAPER_ONE_CLASS["epochs"])


def test_score_help_has_no_doubled_percent(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    assert "95% TPR" in " ".join(text.split()) and "%%" not in text


@pytest.mark.parametrize("command", ["one-class", "sweep"])
def test_class_list_errors_are_readable(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--classes", "a,b"])
    err = capsys.readouterr().err
    assert "_int_list" not in err and "'a,b'" in err and "0,1,2" in err


@pytest.mark.parametrize("command", ["one-class", "sweep"])
def test_a_bad_class_leaves_no_folder_behind(command, tmp_path, capsys):
    out = tmp_path / "protocol"
    assert main([command, "--classes", "0,42", "--out", str(out), "--no-progress"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------ issue 26
@pytest.mark.parametrize("flag", ["--image-size", "--cifar-stem", "--hidden"])
def test_an_unset_default_is_said_once(flag, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {flag}"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  --"))
    entry = " ".join(" ".join(lines[start:end]).split())
    assert "(default: None)" not in entry and entry.count("default") + entry.count("unset") == 1


def test_compare_help_shows_the_probe_compare_runs(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = capsys.readouterr().out
    assert _default_shown(text, "--linear-probe") == "fast"
    flat = " ".join(text.split())
    out_help = flat[flat.index(" --out OUT ") :][:120]
    assert "comparison" in out_help
