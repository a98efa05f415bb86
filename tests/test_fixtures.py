"""The submission fixtures and the demo class: named by outcome, scored by hand, free of markers."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected_scores.json").read_text())


def test_every_fixture_has_a_committed_score_and_every_score_a_fixture():
    on_disk = {(p.parent.name, p.stem) for p in (FIXTURES / "submissions").glob("*/*.ipynb")}
    scored = {(a, f) for a, fixtures in EXPECTED.items() for f in fixtures}
    assert on_disk == scored


def test_fixtures_are_named_by_their_outcome():
    for fixtures in EXPECTED.values():
        for name, score in fixtures.items():
            assert name.startswith(("passes_", "fails_", "untouched_")), name
            assert (score > 0) if name.startswith("fails_") else True, name


def test_submissions_look_like_students_made_them():
    """No solution or hidden-test markers: fixtures start from the release, as students do."""
    for path in list((FIXTURES / "submissions").rglob("*.ipynb")) + list((ROOT / "demo").rglob("*.ipynb")):
        text = path.read_text()
        assert "SOLUTION" not in text and "HIDDEN TESTS" not in text, path
