"""The README's Measures section tells the truth about the registries: its counts are theirs and
its table lists exactly the direct measures of ``compute.MEASURES``, in the registry's order."""
import re
from pathlib import Path

from compute.measures.dimensionality import DIMENSIONALITY_METHODS
from compute.measures.registry import COMPARE_METHODS, MEASURES, RDM_METHODS, REPEATED_RDM_METHODS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("\n## Measures\n", 1)[1].split("\n## ", 1)[0]


def stated(pattern: str, text: str = SECTION) -> int:
    found = re.findall(pattern, text)
    assert len(found) == 1, f"the README should say {pattern!r} once, found {found}"
    return int(found[0])


def test_the_measure_counts_are_the_registries():
    rdms, compares, direct = len(RDM_METHODS) + len(REPEATED_RDM_METHODS), len(COMPARE_METHODS), len(MEASURES)
    assert stated(r"(\d+) input-RDM dissimilarities") == rdms
    assert stated(r"(\d+) ways to compare two RDMs") == compares
    assert stated(r"the (\d+) direct measures below") == direct
    assert stated(r"(\d+) describe one layer") == len(DIMENSIONALITY_METHODS)
    assert stated(r"(\d+) compare representations") == rdms + compares + direct
    total = stated(r"(?m)^(\d+) measures, each checked")
    assert total == rdms + compares + direct + len(DIMENSIONALITY_METHODS) >= 33
    assert stated(r"any of the (\d+) direct measures", README) == direct  # the pages table


def test_the_table_lists_every_direct_measure_once():
    rows = re.findall(r"^\| `(\w+)` \|", SECTION, flags=re.MULTILINE)
    assert rows == list(MEASURES)


def test_the_table_names_each_measure_in_the_registry_s_words():
    words = re.findall(r"^\| `\w+` \| ([^|]+) \|", SECTION, flags=re.MULTILINE)
    assert words == [m.title for m in MEASURES.values()]
