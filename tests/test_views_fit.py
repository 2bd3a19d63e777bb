"""HTML views fit a 1,000-pixel-wide page: long example texts wrap instead of running off the side."""
import pytest

import interplab

LONG = ("The committee approved the budget after a long meeting about the new building, and then everybody "
        "went home because it had been a very long day of arguments about money, windows and doors. ") * 3


@pytest.mark.browser
def test_explorer_neuron_examples_wrap_at_1000px(browser, minilm, tmp_path):
    view = interplab.explore(minilm, "A short sentence to explore.", neuron=(4, 100), examples=[LONG, LONG[::-1]])
    page_file = tmp_path / "view.html"
    page_file.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + view.body + "</body></html>")
    context = browser.new_context(offline=True, viewport={"width": 1000, "height": 800})
    page = context.new_page()
    try:
        page.goto(page_file.as_uri())
        page.wait_for_selector(".ipl-example", timeout=10_000)
        widths = page.eval_on_selector_all(".ipl-example", "els => els.map(e => e.getBoundingClientRect().right)")
        assert widths and max(widths) <= 1000, widths
        assert page.evaluate("document.documentElement.scrollWidth") <= 1000
        assert page.eval_on_selector(".ipl-example", "e => e.getBoundingClientRect().height") > 40  # it wrapped
    finally:
        context.close()
