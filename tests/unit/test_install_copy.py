"""deploy/install.sh copies the checkout's package into /opt/edge/src and installs it from there.
Its list missed edge_tools (benchmarks, evaluations, the demo, the int8 calibration photos), so
on an installed device `edge demo`, `edge bench`, `edge eval`, `edge models calibrate` and
`edge models quantize` failed with ModuleNotFoundError, and `install.sh --profile board` (int8)
died at its quantize step. Every package pyproject.toml installs must be in the copy."""
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_install_copy_holds_every_package_pyproject_installs():
    script = (ROOT / "deploy/install.sh").read_text()
    line = next(ln for ln in script.replace("\\\n", " ").splitlines() if "tar -cf -" in ln)
    copied = {w for w in shlex.split(line.split("tar -cf -", 1)[1].split(")", 1)[0]) if not w.startswith("--")}
    include = re.search(r'include = \[(.*?)\]', (ROOT / "pyproject.toml").read_text()).group(1)
    patterns = [p.strip().strip('"') for p in include.split(",")]
    packages = {d.name for d in ROOT.iterdir() if (d / "__init__.py").is_file()
                and any(Path(d.name).match(p) for p in patterns)}
    assert packages >= {"edge", "edge_tools"}
    assert packages <= copied, f"install.sh does not copy {sorted(packages - copied)}"
    assert {"pyproject.toml", "README.md"} <= copied          # what the build itself reads
