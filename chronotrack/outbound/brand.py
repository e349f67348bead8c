"""An event's brand colours and fonts, read from its website, as the old system offered.

The page is parsed with the standard library's HTML parser (no scripts run, nothing
rendered): ``<meta name="theme-color">``, ``<style>`` blocks, ``style`` attributes and up
to three linked stylesheets on the same site (each fetched through ``safe_fetch`` with its
own size limit). Colours are ranked by prominence: the theme colour and custom properties
named like a brand colour count most, then how often a colour is used. Near-white,
near-black and grey are what every site uses for text and background, so they are not
brand colours; the most used dark one and light one are reported as text and background.
Fonts come from ``font-family`` declarations and Google-Fonts-style links.
"""

from __future__ import annotations

import colorsys
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from twisted.logger import Logger

from chronotrack.outbound.safe_fetch import FetchError, FetchPolicy, HTTPError, SafeFetcher, safe_url_text

log = Logger()

MAX_PAGE_BYTES = 1024 * 1024
MAX_STYLESHEET_BYTES = 512 * 1024
MAX_STYLESHEETS = 3
MAX_COLORS = 8
MAX_FONTS = 5

THEME_COLOR_WEIGHT = 20
BRAND_PROPERTY_WEIGHT = 8
CUSTOM_PROPERTY_WEIGHT = 3
BRAND_WORDS = ("primary", "brand", "accent", "secondary", "main", "theme", "highlight")
GENERIC_FONTS = {"serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui", "inherit", "initial",
                 "unset", "ui-sans-serif", "ui-serif", "ui-monospace", "-apple-system", "blinkmacsystemfont",
                 "emoji", "math", "fangsong", "revert", "var"}

HEX_COLOR = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})(?![0-9a-zA-Z])")
RGB_COLOR = re.compile(r"rgba?\(\s*(\d{1,3})[\s,]+(\d{1,3})[\s,]+(\d{1,3})\s*(?:[,/]\s*([\d.]+%?)\s*)?\)")
DECLARATION = re.compile(r"(--[\w-]+|[a-zA-Z-]+)\s*:\s*([^;{}]+)")
COMMENT = re.compile(r"/\*.*?\*/", re.S)


class NotHTML(FetchError):
    pass


@dataclass
class Brand:
    colors: list[str]
    fonts: list[str]
    text_color: str | None
    background_color: str | None
    url: str

    def to_json(self) -> dict[str, Any]:
        return {"colors": self.colors, "fonts": self.fonts, "text_color": self.text_color,
                "background_color": self.background_color, "url": self.url}


# Reading colours


def normalise_color(text: str) -> str | None:
    """``#rrggbb`` for a hex or rgb() colour (mostly transparent ones are no colour at all)."""
    text = text.strip()
    match = HEX_COLOR.fullmatch(text) or HEX_COLOR.match(text)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return "#" + digits.lower()
    match = RGB_COLOR.match(text)
    if match:
        channels = [int(value) for value in match.groups()[:3]]
        alpha = match.group(4)
        if alpha is not None:
            opacity = float(alpha[:-1]) / 100 if alpha.endswith("%") else float(alpha)
            if opacity < 0.5:
                return None
        if any(channel > 255 for channel in channels):
            return None
        return "#" + "".join(f"{channel:02x}" for channel in channels)
    return None


def colors_in(text: str) -> list[str]:
    found = []
    for match in re.finditer(HEX_COLOR.pattern + "|" + RGB_COLOR.pattern, text):
        color = normalise_color(match.group(0))
        if color:
            found.append(color)
    return found


def _hls(color: str) -> tuple[float, float, float]:
    red, green, blue = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(red, green, blue)


def is_neutral(color: str) -> bool:
    """Near-white, near-black or grey: what every site uses, so not a brand colour."""
    _hue, lightness, saturation = _hls(color)
    return lightness > 0.94 or lightness < 0.08 or saturation < 0.15


@dataclass
class _Tally:
    brand: Counter = field(default_factory=Counter)
    text: Counter = field(default_factory=Counter)
    background: Counter = field(default_factory=Counter)
    fonts: Counter = field(default_factory=Counter)

    def add_css(self, css: str) -> None:
        css = COMMENT.sub(" ", css)
        for name, value in DECLARATION.findall(css):
            name = name.lower()
            if name == "font-family":
                self.add_font_family(value)
                continue
            colors = colors_in(value)
            if not colors:
                continue
            weight = 1
            if name.startswith("--"):
                weight = BRAND_PROPERTY_WEIGHT if any(word in name for word in BRAND_WORDS) else CUSTOM_PROPERTY_WEIGHT
            for color in colors:
                self.add_color(color, weight, name)

    def add_color(self, color: str, weight: int, where: str = "") -> None:
        if is_neutral(color):
            _hue, lightness, _saturation = _hls(color)
            if lightness >= 0.5 and ("background" in where or where.startswith("--")):
                self.background[color] += weight
            elif lightness < 0.5 and (where == "color" or where.startswith("--")):
                self.text[color] += weight
            return
        self.brand[color] += weight

    def add_font_family(self, value: str) -> None:
        for index, part in enumerate(value.split(",")):
            family = part.strip().strip("'\"").strip()
            if not family or family.lower() in GENERIC_FONTS or family.startswith("var(") or len(family) > 60:
                continue
            self.fonts[family] += 3 if index == 0 else 1

    def add_font_link(self, href: str) -> None:
        """fonts.googleapis.com/css?family=Roboto:400|Open+Sans and css2?family=Inter:wght@400&family=..."""
        query = parse_qs(urlsplit(href).query)
        for value in query.get("family", []):
            for family in value.split("|"):
                name = family.split(":", 1)[0].replace("+", " ").strip()
                if name and len(name) <= 60:
                    self.fonts[name] += 5


# Reading the page


class _PageParser(HTMLParser):
    def __init__(self, tally: _Tally) -> None:
        super().__init__(convert_charrefs=True)
        self.tally = tally
        self.stylesheets: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "meta" and values.get("name", "").lower() in ("theme-color", "msapplication-tilecolor"):
            color = normalise_color(values.get("content", ""))
            if color:
                self.tally.add_color(color, THEME_COLOR_WEIGHT, "--theme")
        elif tag == "link" and "stylesheet" in values.get("rel", "").lower().split() and values.get("href"):
            href = values["href"]
            if "fonts.googleapis.com" in href or "fonts.bunny.net" in href:
                self.tally.add_font_link(href)
            else:
                self.stylesheets.append(href)
        elif tag == "style":
            self._in_style = True
        if values.get("style"):
            self.tally.add_css(values["style"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.tally.add_css(data)


def _same_site(page_url: str, other_url: str) -> bool:
    """The same host, or hosts sharing the page's registrable-looking last two labels."""
    page_host = (urlsplit(page_url).hostname or "").lower()
    other_host = (urlsplit(other_url).hostname or "").lower()
    if not page_host or not other_host:
        return False
    site = ".".join(page_host.split(".")[-2:])
    return other_host == page_host or other_host == site or other_host.endswith("." + site)


def brand_from_html(html: str, url: str) -> tuple[_Tally, list[str]]:
    """The tally of one page and the same-site stylesheets it links (absolute URLs, at most three)."""
    tally = _Tally()
    parser = _PageParser(tally)
    parser.feed(html)
    parser.close()
    sheets = []
    for href in parser.stylesheets:
        absolute = urljoin(url, href)
        if urlsplit(absolute).scheme in ("http", "https") and _same_site(url, absolute) and absolute not in sheets:
            sheets.append(absolute)
    return tally, sheets[:MAX_STYLESHEETS]


def summarise(tally: _Tally, url: str) -> Brand:
    return Brand(colors=[color for color, _ in tally.brand.most_common(MAX_COLORS)],
                 fonts=[font for font, _ in tally.fonts.most_common(MAX_FONTS)],
                 text_color=tally.text.most_common(1)[0][0] if tally.text else None,
                 background_color=tally.background.most_common(1)[0][0] if tally.background else None,
                 url=url)


async def fetch_brand(reactor: Any, url: str, allow_private: bool = False, timeout: float = 15.0) -> Brand:
    """Fetch the page and its stylesheets and read the brand; raises ``FetchError`` (or ``NotHTML``)."""
    page_fetcher = SafeFetcher(reactor, FetchPolicy(max_bytes=MAX_PAGE_BYTES, timeout=timeout,
                                                    allow_private=allow_private))
    page = await page_fetcher.fetch(url, headers={"Accept": "text/html,application/xhtml+xml"})
    if page.code >= 400:
        raise HTTPError(page.code, f"the website answered HTTP {page.code}")
    if page.content_type not in ("text/html", "application/xhtml+xml", ""):
        raise NotHTML(f"that address is not a web page (it is {page.content_type})")
    tally, sheets = brand_from_html(page.text(), page.url)
    sheet_fetcher = SafeFetcher(reactor, FetchPolicy(max_bytes=MAX_STYLESHEET_BYTES, timeout=timeout,
                                                     allow_private=allow_private))
    for sheet_url in sheets:
        try:
            sheet = await sheet_fetcher.fetch(sheet_url, headers={"Accept": "text/css"})
        except FetchError as error:  # a missing stylesheet leaves the page's own colours
            log.info("brand: stylesheet {url} skipped: {error}", url=safe_url_text(sheet_url), error=str(error))
            continue
        if sheet.code < 400:
            tally.add_css(sheet.text())
    return summarise(tally, page.url)
