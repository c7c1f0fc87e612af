"""Accessibility of the main page, checked by axe-core (pinned in frontend/package.json, installed
by `npm ci`): no serious or critical violation of WCAG 2.1 A/AA, on the desktop and the phone, in
Chinese and in English, with the panels a person opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import ROOT, MapPage

pytestmark = pytest.mark.browser
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE_JS = """async () => {
  const result = await window.axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
    // The map canvas draws pixels, not text: its contrast is not what axe can judge.
    exclude: [['.maplibregl-canvas']],
  });
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary)}));
}"""


def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `cd frontend && npm ci` (it is a devDependency)", pytrace=False)
    return Path(AXE).read_text(encoding="utf-8")


def serious_violations(tab: MapPage) -> list[dict]:
    tab.page.evaluate(axe_source())  # evaluated over CDP: the page's CSP does not apply
    return tab.js(RUN_AXE_JS)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_main_page_has_no_serious_violations_on_the_desktop(map_page: MapPage, lang: str) -> None:
    map_page.open("#lang=en" if lang == "en" else "")
    page = map_page.page
    found = {"layers": serious_violations(map_page)}
    page.locator("#tab-zone").click()
    map_page.js(
        "() => window.ecomap.zoneCheck.checkGeometry({type: 'Polygon', coordinates: [[[118.02, 24.74],"
        " [118.05, 24.74], [118.05, 24.77], [118.02, 24.77], [118.02, 24.74]]]}, 200)"
    )
    page.locator("#zone-verdict").wait_for()
    found["site check"] = serious_violations(map_page)
    page.locator("#tab-chief").click()
    page.locator(".chief-list li").first.wait_for()
    found["chiefs"] = serious_violations(map_page)
    assert {k: v for k, v in found.items() if v} == {}


def test_main_page_has_no_serious_violations_on_a_phone(phone_page: MapPage) -> None:
    phone_page.open("#chief=1")
    phone_page.page.locator("#chief-detail").wait_for()
    phone_page.wait_for_animations()
    assert serious_violations(phone_page) == []
