"""The project's own promises: CI runs the README's test command; the README opens with two commands."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_opens_with_run_and_test_commands():
    run, test = readme_commands()
    assert run.endswith("sftbench run")
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in ci_lines


def test_readme_suite_example_is_a_valid_suite():
    import yaml

    from sftbench.suite.cases import expand
    from sftbench.suite.loader import parse_suite

    text = (ROOT / "README.md").read_text()
    block = text.split("## The suite format", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    cases = expand(parse_suite(yaml.safe_load(block), "README.md"))
    assert len(cases) == 14  # 4 backbones x 2 datasets x 2 strategies, minus random-init full on both datasets
