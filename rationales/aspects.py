"""Expert aspects of ad memorability: what the rationale writer is asked to judge, one at a time.

    ASPECTS.get("humor")                              # a built-in Aspect
    resolve_aspects(["humor", "jingle"], config)      # built-ins + [aspects.NAME] of memo.toml
    resolve_aspects(["all"], config)                  # every built-in and every configured aspect

The built-ins follow the expert-derived aspects of the DSGT system (MediaEval 2025): each has a
one-line definition and what the model should look for in the ad's texts (and frames). Users add
their own in memo.toml without touching code:

    [aspects.jingle]
    definition = "a short tune sung with the brand name"
    look_for = "sung lines, rhymes, the brand name set to music"

A configured aspect with a built-in's name replaces the built-in's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memo.errors import ConfigError
from memo.registry import Registry

if TYPE_CHECKING:
    from memo.config import Config


@dataclass(frozen=True)
class Aspect:
    name: str
    definition: str  # one line: what the aspect is
    look_for: str  # what in the ad is evidence for it


ASPECTS: Registry[Aspect] = Registry("aspect")


def _builtin(name: str, definition: str, look_for: str) -> None:
    ASPECTS.register(name)(Aspect(name, definition, look_for))


_builtin(
    "humor",
    "how funny the ad is and how central the humour is to it",
    "jokes, wordplay, absurd or surprising situations, comic timing, characters meant to amuse",
)
_builtin(
    "emotion",
    "emotional intensity and valence: how strongly, and how positively or negatively, the ad moves the "
    "viewer",
    "family, love, nostalgia, fear, pride, warmth, tension, a touching story, the tone of voice and music",
)
_builtin(
    "brand",
    "brand prominence and integration: how visible the brand is and how tied it is to the story",
    "the brand name said or shown, how early and how often, the logo, the product in use, the brand as "
    "the hero of the story",
)
_builtin(
    "narrative",
    "narrative clarity and arc: whether the ad tells a story that is easy to follow, with a beginning, "
    "a turn and an end",
    "characters, a problem and its resolution, a clear sequence of events, a payoff at the end",
)
_builtin(
    "novelty",
    "novelty and surprise: how unexpected or original the ad is compared with typical ads of its category",
    "an unusual idea, a twist, a format that breaks the conventions of bank or insurance ads",
)
_builtin(
    "people",
    "human presence and faces: how much the ad shows people a viewer can relate to",
    "faces, close-ups, families, celebrities, spokespeople, people talking to the camera",
)
_builtin(
    "message",
    "simplicity of the key message: whether the ad has one clear takeaway a viewer could repeat",
    "a single claim or offer, plain words, a call to action, no clutter of terms and conditions",
)
_builtin(
    "music",
    "sound and music: how distinctive and prominent the sound track is",
    "a jingle, a song, a recognisable tune, a sound logo, a voice-over, silence used on purpose",
)
_builtin(
    "repetition",
    "repetition: hooks, slogans and jingles that repeat the brand or the message",
    "a slogan, a catchphrase, the brand name repeated, a tagline at the end, a recurring line",
)
_builtin(
    "visual",
    "visual distinctiveness: how striking and recognisable the pictures are",
    "bright or unusual colours, a signature character or mascot, motion, fast cuts, memorable images",
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def known_aspects(config: Config | None = None) -> list[str]:
    """Built-in aspect names plus the ones configured in memo.toml, sorted."""
    names = set(ASPECTS.names())
    if config is not None:
        names |= set(config.aspects)
    return sorted(names)


def get_aspect(name: str, config: Config | None = None) -> Aspect:
    """One aspect by name; [aspects.NAME] of memo.toml wins over a built-in of the same name."""
    if config is not None and name in config.aspects:
        a = config.aspects[name]
        if not _NAME.match(name):
            raise ConfigError(
                f"aspect name {name!r} must be lower-case letters, digits and '_' (it names a feature "
                f"stream); rename [aspects.{name}]."
            )
        if not a.definition.strip():
            raise ConfigError(
                f'[aspects.{name}] has no definition; add definition = "..." (and look_for = "...") in '
                "memo.toml."
            )
        return Aspect(name, a.definition.strip(), a.look_for.strip())
    if name not in ASPECTS:
        raise ConfigError(
            f"unknown aspect {name!r}; choose from: {', '.join(known_aspects(config))}, or 'all' "
            f"(or define [aspects.{name}] in memo.toml)."
        )
    return ASPECTS.get(name)


def resolve_aspects(names: list[str] | str | None, config: Config | None = None) -> list[Aspect]:
    """Names (a list or 'a,b') -> Aspects in the order given, duplicates dropped; 'all' = every known
    aspect."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ConfigError(
            "no aspects were chosen; pass --aspects humor,emotion (known: "
            f"{', '.join(known_aspects(config))}) or 'all'."
        )
    if "all" in names:
        names = known_aspects(config)
    out: list[Aspect] = []
    for n in dict.fromkeys(names):
        out.append(get_aspect(n, config))
    return out
