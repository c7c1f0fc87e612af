"""The map UI's own strings (frontend/src/i18n.js): every key in both languages with the same
placeholders, every key the code and the page ask for defined, and English free of Chinese
except where the text is the other language on purpose (the language switch, the product's
Chinese name). The browser tests check the rendered page the same way (tests/browser/test_english.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "frontend" / "src"
INDEX = SRC.parent / "index.html"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
OTHER_LANGUAGE_ON_PURPOSE = {"appSubtitle", "langToggle", "langToggleLabel"}


def messages() -> dict[str, dict[str, str]]:
    """The MESSAGES table of i18n.js: language -> key -> text."""
    text = (SRC / "i18n.js").read_text(encoding="utf-8")
    table = text[text.index("const MESSAGES = {") : text.index("\n};\n", text.index("const MESSAGES = {"))]
    blocks = re.split(r"\n  (zh|en): \{\n", table)
    out: dict[str, dict[str, str]] = {}
    for lang, body in zip(blocks[1::2], blocks[2::2], strict=True):
        entries = re.findall(r"^    (\w+): ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"),?$", body, re.M)
        out[lang] = {key: value[1:-1] for key, value in entries}
        # Every line of the block is an entry or a comment: nothing was missed by the pattern.
        lines = [ln for ln in body.splitlines() if ln.strip() and not ln.strip().startswith(("//", "}"))]
        assert len(lines) == len(entries), [ln for ln in lines if not re.match(r"^    \w+: ", ln)]
    return out


def sources() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(SRC.rglob("*.js")))


def test_both_languages_have_every_key_with_the_same_placeholders() -> None:
    table = messages()
    assert set(table) == {"zh", "en"}
    assert len(table["zh"]) > 150
    assert sorted(set(table["zh"]) ^ set(table["en"])) == []
    for key, zh in table["zh"].items():
        placeholders = set(re.findall(r"\{(\w+)\}", zh))
        assert placeholders == set(re.findall(r"\{(\w+)\}", table["en"][key])), key


def test_english_texts_have_no_chinese() -> None:
    english = messages()["en"]
    chinese = {key: text for key, text in english.items() if CJK.search(text) and key not in OTHER_LANGUAGE_ON_PURPOSE}
    assert chinese == {}


def test_every_key_the_code_and_page_use_is_defined() -> None:
    keys = set(messages()["zh"])
    code = sources()
    used = set(re.findall(r"\bt\(\s*'(\w+)'", code))
    assert len(used) > 100
    assert sorted(used - keys) == []
    # Keys built from a prefix and a code (t(`level_${level}`)): the prefix has keys.
    for prefix in set(re.findall(r"\bt\(\s*`(\w+)\$\{", code)):
        assert any(key.startswith(prefix) for key in keys), prefix
    page = INDEX.read_text(encoding="utf-8")
    attributes = set(re.findall(r'data-i18n(?:-aria|-placeholder|-title)?="(\w+)"', page))
    assert attributes and sorted(attributes - keys) == []


@pytest.mark.parametrize(
    ("prefix", "codes"),
    [
        ("level_", ["city", "district", "town", "village"]),
        ("chiefPost_", ["river", "bay"]),
        ("role_chief_", ["river", "bay"]),
        ("sheet_", ["peek", "half", "full"]),
        ("verdict_", ["prohibited", "restricted", "caution", "clear"]),
    ],
)
def test_coded_keys_cover_every_code(prefix: str, codes: list[str]) -> None:
    table = messages()
    for lang in ("zh", "en"):
        assert {f"{prefix}{code}" for code in codes} <= set(table[lang]), (lang, prefix)
