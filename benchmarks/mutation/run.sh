#!/usr/bin/env bash
# Mutation testing of the modules the verdicts rest on: regression/, results/ and selection/scores.py
# (issue 28), with mutmut 3 as configured in pyproject.toml ([tool.mutmut]: which files are mutated,
# which fast tests run against each mutant). Too slow for CI (about 4,000 mutants, each running the
# tests that cover its function): run it on a quiet machine; it resumes where it stopped.
# Usage: bash benchmarks/mutation/run.sh ["sftbench.regression.stats*" ...]   (no argument: every mutant)
# then the scores per module: python benchmarks/mutation/scores.py mutants/results.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m pip install -q 'mutmut>=3.3,<4'
mutmut run --max-children "${MAX_CHILDREN:-$(nproc)}" "$@" || true   # exits non-zero when mutants survive
mutmut results --all true > mutants/results.txt
python benchmarks/mutation/scores.py mutants/results.txt
