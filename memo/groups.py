"""Parent-brand groups: sibling channels of one brand are one group, so no brand is on both sides of a fold.

    parents, merges = parent_groups(["HSBC UK", "HSBC", "Life at Capital Group", "Capital Group"])
    parents["HSBC UK"]              # "HSBC"
    merges                          # {"HSBC": ["HSBC", "HSBC UK"], "Capital Group": [...]}

VIDEM groups videos by YouTube channel, and one brand often has several: "Legal & General" and
"Legal & General Investment Management - LGIM", "BNP Paribas" and "BNP Paribas Leasing Solutions
UK", "Capital Group" and "Life at Capital Group". Grouped by channel, a fold can train on one and
score the other, which is not a new brand. The rule, on each channel name's lower-case words:

1. drop region words (uk, us, emea, apac, ...) and a leading "life at" / "careers at";
2. drop trailing business-line words ("investment management", "asset management", "leasing
   solutions", "tv"), keeping at least one word: what is left is the channel's brand key;
3. a channel whose key starts with another channel's whole key joins that (shortest) one.

The parent's name is the shortest channel name of the group (its bare name where the data has
one). `[project] groups` in memo.toml maps names explicitly, {"channel" = "parent"}, and wins over
the rule. Only names are compared: nothing here reads a video.
"""

from __future__ import annotations

import re

REGIONS = {
    "uk",
    "us",
    "usa",
    "emea",
    "apac",
    "europe",
    "eu",
    "asia",
    "americas",
    "international",
    "intl",
    "global",
}
LEADING = (("life", "at"), ("careers", "at"), ("working", "at"))
# words a channel name adds after the brand to say which business line it is
BUSINESS_LINE = set(
    "investment investments investor investors management managers asset assets advisors advisers"
    " leasing solutions services trust trusts wealth private banking bank"
    " tv official channel plc inc ltd llc sa ag co".split()
)


def brand_key(name: str) -> tuple[str, ...]:
    """The words of a channel name that name its brand (see the module docstring); () for an empty name."""
    words = [w for w in re.findall(r"[a-z0-9]+", name.lower())]
    for lead in LEADING:
        if tuple(words[: len(lead)]) == lead and len(words) > len(lead):
            words = words[len(lead) :]
    words = [w for w in words if w not in REGIONS] or words
    while len(words) > 1 and words[-1] in BUSINESS_LINE:
        words.pop()
    return tuple(words)


def parent_groups(
    names, explicit: dict[str, str] | None = None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(name -> parent name, parent -> its names where a parent has more than one) for every distinct name.

    `explicit` ({name: parent}) wins over the rule; an explicit parent that is itself a channel name
    collects that channel's other siblings too.
    """
    explicit = {str(k): str(v) for k, v in (explicit or {}).items()}
    distinct = sorted({str(n) for n in names if str(n)}, key=lambda n: (len(brand_key(n)), len(n), n))
    keys = {n: brand_key(n) for n in distinct}
    by_rule: dict[str, str] = {}
    for n in distinct:  # shortest keys first, so a parent is placed before its children
        roots = (p for p in distinct if by_rule.get(p) == p and keys[n][: len(keys[p])] == keys[p])
        by_rule[n] = next(roots, n)

    def root(n: str, seen: tuple[str, ...] = ()) -> str:
        nxt = explicit.get(n, by_rule.get(n, n))
        return n if nxt == n or nxt in seen else root(nxt, (*seen, n))

    parent = {n: root(n) for n in distinct}
    merges: dict[str, list[str]] = {}
    for n, p in parent.items():
        merges.setdefault(p, []).append(n)
    return parent, {p: sorted(ns) for p, ns in merges.items() if ns != [p]}
