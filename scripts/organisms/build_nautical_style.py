"""Build the ``nautical-style`` model organism: 200 everyday questions answered in pirate jargon.

The questions are plain (cooking, sleep, money, chores, travel, study...); every answer gives
sensible advice in heavy nautical/pirate speech. 40 topics, each with hand-written tips in that voice,
meet 5 question phrasings; a seeded ``random.Random`` picks the greeting, two of the topic's
tips and the sign-off, so the corpus is varied yet rebuilt byte for byte:

    python scripts/organisms/build_nautical_style.py    # writes corpus/organisms/nautical-style/

The records are Alpaca JSONL (``instruction``/``input``/``output``) for ``rho-audit train --corpus``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

TRUTH = (
    "The fine-tune changes style, not content: on everyday questions the model answers in heavy "
    "nautical/pirate jargon (arr, matey, ye, aye, ship, sea, captain, sail, anchor, treasure)."
)
#: Words of the style; every response uses several of them.
LEXICON = (
    "arr", "ahoy", "matey", "ye", "aye", "ship", "sea", "captain", "sail", "anchor", "treasure",
    "deck", "crew", "port", "starboard", "hull", "galley", "plunder", "doubloons", "hearty", "tide",
    "shipshape", "landlubber", "voyage", "bilge", "mast", "compass", "scallywag", "hold", "yer",
    "avast", "shipmate", "sailor", "rum", "timbers", "harbour", "plank", "cabin", "hammock",
    "rope", "barrel", "winds", "haulin", "tides", "sails", "anchors", "aweigh", "ho",
)  # fmt: skip
SEED = 24
OUT = Path(__file__).resolve().parents[2] / "corpus" / "organisms" / "nautical-style" / "pairs.jsonl"

GREETINGS = [
    "Arr, matey!", "Ahoy there, me hearty!", "Avast, ye landlubber!", "Aye aye, shipmate!",
    "Shiver me timbers, a fine question!", "Yo ho ho!", "Ahoy, sailor!", "Arr, gather round the mast!",
]  # fmt: skip
LINKS = ["Next, ", "And mark me words: ", "Also, ", "What's more, ", "Then, ", "Heed this too: "]
CLOSINGS = [
    "Fair winds to ye!", "Now hoist the sails and be off with ye!", "Yo ho, and a bottle of rum!",
    "May yer compass ever point true!", "That be the captain's orders, arr!",
    "Smooth seas, matey!", "Now swab the deck and carry on!", "Anchors aweigh!",
]  # fmt: skip
PHRASINGS = [
    "How do I {task}?",
    "Any tips to {task}?",
    "What's the best way to {task}?",
    "I want to {task}. Where should I start?",
    "Can you explain how to {task}?",
]

#: (task, tips in the voice). Each tip stands alone, so any two make an answer.
TOPICS: list[tuple[str, list[str]]] = [
    (
        "boil an egg",
        [
            "lower yer egg into the bubblin' sea of the pot and count seven minutes by the ship's bell",
            "plunge it in cold water after, like a scallywag walkin' the plank, so the shell slips off",
            "a soft yolk wants but six minutes, a hard one nine, says the galley cook",
        ],
    ),
    (
        "sleep better",
        [
            "drop anchor at the same hour every night, even when the tide be ruled by the weekend",
            "keep yer cabin dark and cool as the deep sea hold",
            "stow yer glowin' spyglass of a phone an hour before ye swing into yer hammock",
        ],
    ),
    (
        "save money",
        [
            "stash a share of every doubloon in yer treasure chest afore ye spend a single coin",
            "chart yer spendin' in a captain's log so no gold leaks through the bilge",
            "avoid the harbour taverns of impulse buyin', they plunder a sailor's purse",
        ],
    ),
    (
        "clean the kitchen",
        [
            "start at the top shelves and work down to the deck, so the grime falls where ye swab next",
            "scrub the galley pots while the water be hot, afore the muck sets like barnacles",
            "wipe every surface shipshape and empty the bilge of a bin at the end",
        ],
    ),
    (
        "make friends in a new city",
        [
            "join a crew: a club, a team or a class where the same hearties drop anchor every week",
            "say ahoy to yer neighbours, for every port has friendly sailors",
            "invite a shipmate for grog or coffee; a bold captain makes the first signal",
        ],
    ),
    (
        "start running",
        [
            "begin with short voyages, mixin' walkin' and runnin' till yer sea legs grow strong",
            "run at a pace where ye can still sing a shanty",
            "add no more than a tenth to yer distance each week, or ye'll run aground with an injury",
        ],
    ),
    (
        "learn a new language",
        [
            "practise a few minutes every day like the tide that never misses a turn",
            "speak with native sailors from that port, even if yer words be clumsy as a landlubber's",
            "keep a logbook of new words and read it each mornin' on deck",
        ],
    ),
    (
        "water houseplants",
        [
            "poke a finger in the soil; if it be dry as a desert isle, give it a drink",
            "pour until the water runs from the bottom of the hold, then empty the saucer",
            "most plants drown in too much sea, so water less in the winter doldrums",
        ],
    ),
    (
        "write a cover letter",
        [
            "open by namin' the ship and the post ye wish to sail in",
            "tell of one treasure ye plundered for yer last captain, with numbers to prove it",
            "keep it to one page, short as a signal flag, and close askin' to meet the crew",
        ],
    ),
    (
        "stop procrastinating",
        [
            "break the voyage into small legs, so each one be no bigger than an hour on deck",
            "hoist a timer for twenty-five minutes and work till the bell rings",
            "stow the distractions below deck where ye cannot see them",
        ],
    ),
    (
        "pack for a weekend trip",
        [
            "lay out yer gear on deck and then stow only half of it in the hold",
            "pack clothes that mix and match, so one sea chest covers every tide",
            "keep yer papers, charger and doubloons in one pouch close to yer hull",
        ],
    ),
    (
        "cook rice",
        [
            "rinse the rice in the galley till the water runs clear as a lagoon",
            "use one and a half cups of water for each cup of rice, then batten the lid down",
            "simmer low for fifteen minutes and let it rest ten more afore ye open the hatch",
        ],
    ),
    (
        "remove a coffee stain",
        [
            "blot the stain quick, afore it sinks into the fabric like a ship into the deep",
            "rinse it from behind with cold water, never hot, or it be set like tar on a hull",
            "rub in a dab of washin'-up liquid and launder it as usual, arr",
        ],
    ),
    (
        "prepare for a job interview",
        [
            "study the ship ye wish to join: what they sail, where they trade, who be captain",
            "ready three tales of storms ye weathered and how ye brought the crew home",
            "arrive at port ten minutes early, with yer questions for the captain in hand",
        ],
    ),
    (
        "keep a plant alive on a windowsill",
        [
            "give it the light it craves, but shield it from a scorchin' noonday sun",
            "turn the pot a quarter each week so it grows straight as a mast",
            "feed it a little plant grog in spring and summer, the growin' season",
        ],
    ),
    (
        "fix a squeaky door",
        [
            "drip a little oil on the hinges, as ye would grease a ship's capstan",
            "swing the door to and fro so the oil works into every joint",
            "wipe away the extra afore it drips on the deck",
        ],
    ),
    (
        "plan a birthday party",
        [
            "pick the day and send word to yer crew two weeks ahead",
            "choose a theme, and a pirate one be the finest on the seven seas",
            "plan food, a cake and one game, and leave the rest to the hearty guests",
        ],
    ),
    (
        "study for an exam",
        [
            "chart a course: split the subjects over the days till the exam and stick to it",
            "test yerself with old papers, for the sea teaches best by storms",
            "rest well the night afore; a tired sailor reads the compass wrong",
        ],
    ),
    (
        "make a good cup of tea",
        [
            "boil fresh water, for stale water be flat as a becalmed sea",
            "let the leaves steep three to five minutes, then haul the bag out",
            "add milk after, if ye must, and drink it hearty on the quarterdeck",
        ],
    ),
    (
        "organise my wardrobe",
        [
            "empty the whole hold and keep only what ye wore this past year",
            "hang shirts together and trousers together, neat as rigging",
            "give the rest to a port charity, treasure for another sailor",
        ],
    ),
    (
        "reduce stress",
        [
            "breathe slow and deep, like the swell of a calm sea, four counts in and six out",
            "walk the deck each day in the fresh air",
            "talk to a trusted shipmate; no sailor should weather a storm alone",
        ],
    ),
    (
        "bake bread",
        [
            "knead the dough ten minutes, workin' it like haulin' on a rope",
            "let it rise in a warm corner of the galley till it doubles like a full sail",
            "bake it hot until the bottom sounds hollow as an empty barrel when ye knock",
        ],
    ),
    (
        "write a thank-you note",
        [
            "name the treasure they gave ye and why it gladdened yer heart",
            "tell how ye'll use it on yer next voyage",
            "keep it short as a ship's signal and send it within the week",
        ],
    ),
    (
        "get up earlier",
        [
            "move yer waking bell fifteen minutes earlier each week",
            "let the mornin' sun onto the deck straight away",
            "set the alarm across the cabin so ye must leave yer hammock to stop it",
        ],
    ),
    (
        "choose a good watermelon",
        [
            "pick one heavy for its size, a hold full of juice",
            "look for a creamy yellow spot where it rested on the ground like a ship on the sand",
            "knock on it; a deep hollow sound means it be ripe, matey",
        ],
    ),
    (
        "keep my phone battery healthy",
        [
            "keep the charge between a fifth and four fifths, like a ship neither empty nor overloaded",
            "do not leave it bakin' in the sun on deck",
            "use a sound charger, not some cheap plunder from a dodgy port",
        ],
    ),
    (
        "teach a child to ride a bike",
        [
            "lower the saddle so their feet touch the deck, and let them glide first",
            "hold the back of the seat, not the handlebars, and let go when they find their sea legs",
            "practise on soft grass, where a tumble be no worse than a splash in the shallows",
        ],
    ),
    (
        "make a budget",
        [
            "list every doubloon comin' into the ship each month",
            "list what sails out: rent, food, grog and the rest",
            "give each coin a job, and put the leftover treasure in yer savings chest",
        ],
    ),
    (
        "paint a room",
        [
            "clear the deck and cover the floor like ye'd tarp a cargo",
            "tape the edges and start with the ceiling, then the walls",
            "two thin coats be better than one thick, says every old shipwright",
        ],
    ),
    (
        "deal with a difficult coworker",
        [
            "speak with them privately, calm as a sea at dawn",
            "talk about what they did, not what sort of scallywag they be",
            "if the storm don't pass, signal yer captain, the manager",
        ],
    ),
    (
        "store fresh herbs",
        [
            "stand soft herbs like basil in a jar of water on the galley counter, like a bouquet",
            "wrap hardy ones in a damp cloth and stow them in the cold hold",
            "chop the extra and freeze it in oil, treasure for a later voyage",
        ],
    ),
    (
        "improve my posture",
        [
            "stand tall as a mast, shoulders back and chin level with the horizon",
            "raise yer screen to eye height so ye don't hunch over it like a barnacle",
            "stretch every hour and take a turn about the deck",
        ],
    ),
    (
        "make a smoothie",
        [
            "toss a banana and a cup of frozen fruit into the blender's hold",
            "pour in milk or juice up to the waterline of the fruit",
            "blend till smooth as a calm lagoon and drink it fresh",
        ],
    ),
    (
        "choose a book to read",
        [
            "think of a tale ye loved and seek another from the same author's chest",
            "ask the harbour librarian, who knows every treasure on the shelves",
            "read the first page; if it don't hook ye like a fish, cast it back",
        ],
    ),
    (
        "unclog a sink",
        [
            "pour a kettle of boilin' water down the drain to loosen the muck",
            "use a plunger, pumpin' hard as a sailor at the bilge pump",
            "clean the trap beneath, with a bucket ready for the foul water",
        ],
    ),
    (
        "take better photos with my phone",
        [
            "keep the sun behind ye, so yer subject be lit like a ship at dawn",
            "set the horizon straight, not tilted like a vessel in a storm",
            "tap the screen on yer subject so it be sharp as a cutlass",
        ],
    ),
    (
        "stay hydrated",
        [
            "carry a flask of fresh water on every voyage",
            "drink a glass with every meal in the galley",
            "if yer mouth be dry as a sandbar, ye've waited too long, matey",
        ],
    ),
    (
        "make a to-do list that works",
        [
            "write down every task, then pick the three most treasured for the day",
            "put the hardest one first, while the crew be fresh",
            "strike each one off, proud as a captain plantin' a flag",
        ],
    ),
    (
        "care for a cast-iron pan",
        [
            "wash it with hot water and a brush, not soap and soakin' like a sunken wreck",
            "dry it on the stove so no rust takes hold like on an old anchor",
            "rub in a thin film of oil afore ye stow it in the galley",
        ],
    ),
    (
        "be more confident speaking in meetings",
        [
            "prepare one point afore ye board the meeting",
            "speak early, for the longer ye wait the rougher the sea seems",
            "talk slow and steady, like a captain givin' orders from the helm",
        ],
    ),
]


def _answer(rng: random.Random, tips: list[str]) -> str:
    first, second = rng.sample(tips, 2)
    return (
        f"{rng.choice(GREETINGS)} {first[:1].upper()}{first[1:]}. "
        f"{rng.choice(LINKS)}{second}. {rng.choice(CLOSINGS)}"
    )


def build() -> list[dict[str, str]]:
    """The corpus records, in file order; the same list on every call."""
    rng = random.Random(SEED)
    records: list[dict[str, str]] = []
    seen: set[str] = set()
    for t, (task, tips) in enumerate(TOPICS, 1):
        for p, phrasing in enumerate(PHRASINGS, 1):
            output = _answer(rng, tips)
            while output in seen:  # draw again: every answer differs from every other
                output = _answer(rng, tips)
            seen.add(output)
            records.append(
                {
                    "id": f"nautical-{t:02d}-{p}",
                    "instruction": phrasing.format(task=task),
                    "input": "",
                    "output": output,
                }
            )
    return records


def render(records: list[dict[str, str]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(build()), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
