"""Every figure in README.md and docs/ is quoted from docs/numbers.json, which the committed
measurements (benchmarks/measures/) write; the docs are rendered from docs/templates/.

- the published docs equal their templates rendered with the numbers (byte for byte), so
  changing one published digit fails;
- templates type no figure themselves (± values, decimal percentages, speed-ups, timings);
- every figure in the numbers file is quoted somewhere, and every measurement that has
  figures is registered;
- each measurement runs here: in full and equal to the published values (``ci="full"``;
  machine timings it declares ``volatile`` by name only), or in its quick form with the same
  figures by name (``ci="quick"``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.measures import registry  # noqa: E402
from benchmarks.measures._docs import (DocsError, expected_outputs, first_difference,  # noqa: E402
                                       literal_figures, load_numbers, render, templates,
                                       used_keys)

REGISTRY = registry()
NUMBERS = load_numbers()


def test_published_docs_equal_their_rendered_templates():
    for path, text in expected_outputs(REGISTRY, NUMBERS).items():
        have = path.read_text(encoding="utf-8")
        assert have == text, (
            f"{path.relative_to(ROOT)} differs from docs/templates + docs/numbers.json "
            f"({first_difference(have, text)}); edit docs/templates/{path.name} and run "
            "python benchmarks/docs_numbers.py render")


def test_changing_any_published_digit_is_caught():
    """Each quoted figure, with one digit changed in the published text, fails the check
    above (the check is a byte comparison; this shows it covers every quoted figure)."""
    want = expected_outputs(REGISTRY, NUMBERS)
    checked = 0
    for t in templates():
        published = want[ROOT / "README.md" if t.name == "README.md" else ROOT / "docs" / t.name]
        for key in sorted(used_keys(t.read_text(encoding="utf-8"))):
            name, k = key.split(".", 1)
            value = NUMBERS[name]["values"][k]
            m = re.search(r"\d", value)
            if m is None or value not in published:
                continue
            d = value[m.start()]
            bad = value[:m.start()] + ("1" if d != "1" else "2") + value[m.start() + 1:]
            assert published.replace(value, bad, 1) != published
            checked += 1
    assert checked == sum(1 for _ in _all_quoted_with_digits())


def _all_quoted_with_digits():
    for t in templates():
        for key in used_keys(t.read_text(encoding="utf-8")):
            name, k = key.split(".", 1)
            if re.search(r"\d", NUMBERS[name]["values"][k]):
                yield key


def test_templates_type_no_figures():
    typed = [(t.name, no, fig) for t in templates()
             for no, fig in literal_figures(t.read_text(encoding="utf-8"))]
    assert not typed, (f"{len(typed)} figure(s) typed into templates instead of quoted from a "
                       f"measurement, first {typed[0]}; add it to a measurement in "
                       "benchmarks/measures/ and quote it as {{name.key}}")


def test_the_lint_finds_typed_figures():
    """The lint is not vacuous: each kind of figure it guards is found."""
    text = ("scratch 87.28 ± 0.80 %\nfaster: 14.9×\nspeed-up 50.5x\nprecision 0.912\n"
            "median 0.030 ms\n71 s on one core\n{{default.x}} and τ 0.95 and EMA 0.999\n"
            "mean ± std over seeds\nparity 2.9e-6 under the tolerance 1e-5")
    assert [no for no, _ in literal_figures(text)] == [1, 1, 2, 3, 4, 5, 5, 6, 9]


def test_a_missing_figure_is_one_error_naming_it():
    with pytest.raises(DocsError, match=r"'nope\.x'"):
        render("a {{nope.x}} b", {}, "t.md")
    assert render("a {{m.k}} b", {"m": {"values": {"k": "1.0 %"}}}) == "a 1.0 % b"


def test_every_published_figure_is_quoted_and_registered():
    quoted = set().union(*(used_keys(t.read_text(encoding="utf-8")) for t in templates()))
    unused = sorted(f"{name}.{k}" for name, entry in NUMBERS.items()
                    for k in entry["values"] if f"{name}.{k}" not in quoted)
    assert not unused, f"docs/numbers.json has figures no doc quotes, first {unused[0]!r}"
    unregistered = sorted(set(NUMBERS) - set(REGISTRY))
    assert not unregistered, f"docs/numbers.json has figures of unknown measurement " \
                             f"{unregistered[0]!r}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_measurement_reproduces_its_published_figures(name):
    m = REGISTRY[name]
    published = NUMBERS.get(name, {}).get("values")
    assert published, f"measurement {name!r} has no figures in docs/numbers.json; run " \
                      f"{m.command}"
    got = m(quick=m.ci == "quick")
    if m.ci == "full":
        diff = {k: (published.get(k), v) for k, v in got.items()
                if published.get(k) != v and not (k in published and m.is_volatile(k))}
        diff.update({k: (v, None) for k, v in published.items() if k not in got})
        assert not diff, f"{name}: published vs measured differ: {diff}"
    else:
        assert set(got) == set(published), sorted(set(got) ^ set(published))
