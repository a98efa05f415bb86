"""pyproject.toml (the venv route) and environment.yml (the conda route) list the same packages."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def names(requirements):
    """Package names, without versions or pip extras (`psycopg[binary]` is conda's `psycopg`)."""
    return {re.split(r"[<>=!~ \[]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def conda_dependencies():
    """The lines under `dependencies:` in environment.yml."""
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    return re.findall(r"^\s+- ([^\n]+)", text, re.M)


def test_conda_and_pip_list_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = names(project["dependencies"] + project["optional-dependencies"]["test"])
    conda_side = names(line.split("#")[0] for line in conda_dependencies()) - {"python", "pip"}
    assert pip_side == conda_side


def test_conda_environment_uses_conda_forge_and_says_why():
    text = (ROOT / "environment.yml").read_text()
    assert "- conda-forge" in text and "name: gd-course" in text
    for line in conda_dependencies():
        if not line.startswith(("python", "pip")):
            assert "#" in line, f"say why this dependency is there: {line}"
