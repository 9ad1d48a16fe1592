"""Every string of the pages exists in both languages, and every key a page uses exists."""

from __future__ import annotations

import re
from pathlib import Path

from mykey.identity.staff import StaffRole
from mykey.points.programs import PLACE_KINDS
from mykey.web.pages.base import TEMPLATES
from mykey.web.pages.messages import MESSAGES
from mykey.web.pages.navi import CONTENT, GUIDES

PAGES = Path(TEMPLATES).parent / "pages"
KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_.-]+)["']""")
STATIC_KEY = re.compile(
    r"""["']((?:error|login|navi|guide|nav|role|kind|staff)\.[a-z0-9_.-]+)["']"""
)


def test_every_message_has_japanese_and_english() -> None:
    missing = [k for k, m in MESSAGES.items() if not m.ja.strip() or not m.en.strip()]
    assert not missing
    # An English text that is still Japanese is a missing translation too.
    untranslated = [k for k, m in MESSAGES.items() if re.search(r"[\u3040-\u30ff]", m.en)]
    assert not untranslated


def test_every_key_a_template_or_page_uses_is_in_the_table() -> None:
    used: set[str] = set()
    modules = [p for p in PAGES.glob("*.py") if p.name != "messages.py"]
    for path in [*Path(TEMPLATES).rglob("*.html"), *modules]:
        text = path.read_text(encoding="utf-8")
        used |= set(KEY.findall(text))
        if path.suffix == ".py":
            used |= set(STATIC_KEY.findall(text))
    # keys built at run time from a known family
    used |= {f"kind.{kind}" for kind in PLACE_KINDS}
    used |= {f"role.{role.value}" for role in StaffRole}
    used |= {f"guide.{slug}" for slug in GUIDES}
    for step in ("card", "mykey_id", "convert", "balance"):
        used |= {f"navi.step.{step}.{part}" for part in ("title", "body", "href", "link")}
    used |= {"login.username.missing", "login.mykey_id.missing"}
    used = {k for k in used if not k.endswith((".", ".html"))}  # prefixes and file names
    assert len(used) > 100
    assert sorted(used - MESSAGES.keys()) == []


def test_every_text_page_is_written_in_both_languages() -> None:
    folder = Path(TEMPLATES) / "navi" / "content"
    for name in CONTENT:
        for lang in ("ja", "en"):
            body = (folder / f"{name}.{lang}.html").read_text(encoding="utf-8")
            assert len(body) > 100, (name, lang)
    stray = {p.name.split(".")[0] for p in folder.glob("*.html")} - set(CONTENT)
    assert not stray
