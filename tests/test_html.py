"""The kit's one token-shading renderer (``interplab.html.shaded_tokens``) that the atlas, SAE feature views,
LM log-prob views and text explanations draw through."""
import re

from interplab.html import ORANGE, shade, shaded_tokens


def _spans(html):
    return re.findall(r'<span title="([^"]*)" style="([^"]*)">(.*?)</span>', html, re.S)


def test_markup_in_tokens_and_titles_is_escaped_never_run():
    html = shaded_tokens(["<script>alert(1)</script>", "a&b"], ["red", "blue"], ['"x" <y>', "t"])
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a&amp;b" in html
    (title, style, text), _ = _spans(html)
    assert title == "&quot;x&quot; &lt;y&gt;" and style == "background:red" and text.startswith("&lt;script")


def test_colour_follows_sign_and_scale():
    assert shade(2.0, 4.0) == "rgba(255,140,0,0.50)" and shade(8.0, 4.0) == "rgba(255,140,0,1.00)"  # clipped
    assert shade(-1.0, 4.0) == "rgba(255,140,0,0.00)"  # one-sided: a negative activation is not shaded
    assert shade(1.0, 0.0) == "rgba(255,140,0,0.00)"  # nothing fires: nothing shaded, no division by zero
    green, red = (0, 128, 0), (200, 0, 0)
    assert shade(-3.0, 3.0, green, red) == "rgba(200,0,0,1.00)" and shade(1.5, 3.0, green, red) == "rgba(0,128,0,0.50)"
    assert shade(0.0, 3.0, green, red, alpha=(0.12, 0.80)) == "rgba(0,128,0,0.12)"  # a floor keeps weak ones visible
    assert ORANGE == (255, 140, 0)


def test_whitespace_tokens_stay_as_given_and_empty_ones_stay_hoverable():
    html = shaded_tokens([" ", "\n", "", "\t"], ["c"] * 4, ["1", "2", "3", "4"], style="white-space:pre-wrap")
    texts = [t for _, _, t in _spans(html)]
    assert texts == [" ", "\n", "&#8203;", "\t"] and all("white-space:pre-wrap" in s for _, s, _ in _spans(html))


def test_gaps_tail_separator_and_unshaded_tokens():
    html = shaded_tokens(["cat", "sat"], ["c1", None], ["a", "b"], gaps=["<", " "], tail="!", sep="|",
                         styles=["border:1px", ""])
    assert html == '&lt;<span title="a" style="background:c1;border:1px">cat</span>| sat!'
