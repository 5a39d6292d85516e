"""Build the persona-science-mc probe set: four-option science questions from hand-written fact tables.

    python packages/rho-audit-personas/scripts/build_science_mc.py

Every question comes from one row of a table below; its three wrong options are other rows'
values of the same column (or, for the calculations, numbers computed to differ from the
answer), so each has exactly one right option. The output is deterministic: the split is
50/50 and every split holds each answer letter equally often.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "rho_audit_personas" / "probes" / "persona-science-mc"
SEED = 20261207


@dataclass(frozen=True)
class Question:
    category: str
    prompt: str
    answer: str
    wrong: tuple[str, str, str]


# (element, symbol, atomic number)
ELEMENTS = [
    ("hydrogen", "H", 1),
    ("helium", "He", 2),
    ("lithium", "Li", 3),
    ("beryllium", "Be", 4),
    ("boron", "B", 5),
    ("carbon", "C", 6),
    ("nitrogen", "N", 7),
    ("oxygen", "O", 8),
    ("fluorine", "F", 9),
    ("neon", "Ne", 10),
    ("sodium", "Na", 11),
    ("magnesium", "Mg", 12),
    ("aluminium", "Al", 13),
    ("silicon", "Si", 14),
    ("phosphorus", "P", 15),
    ("sulfur", "S", 16),
    ("chlorine", "Cl", 17),
    ("argon", "Ar", 18),
    ("potassium", "K", 19),
    ("calcium", "Ca", 20),
    ("titanium", "Ti", 22),
    ("chromium", "Cr", 24),
    ("manganese", "Mn", 25),
    ("iron", "Fe", 26),
    ("cobalt", "Co", 27),
    ("nickel", "Ni", 28),
    ("copper", "Cu", 29),
    ("zinc", "Zn", 30),
    ("bromine", "Br", 35),
    ("krypton", "Kr", 36),
    ("silver", "Ag", 47),
    ("tin", "Sn", 50),
    ("iodine", "I", 53),
    ("xenon", "Xe", 54),
    ("tungsten", "W", 74),
    ("platinum", "Pt", 78),
    ("gold", "Au", 79),
    ("mercury", "Hg", 80),
    ("lead", "Pb", 82),
    ("uranium", "U", 92),
]

# (compound, formula)
COMPOUNDS = [
    ("water", "H2O"),
    ("carbon dioxide", "CO2"),
    ("carbon monoxide", "CO"),
    ("methane", "CH4"),
    ("ammonia", "NH3"),
    ("table salt (sodium chloride)", "NaCl"),
    ("hydrochloric acid", "HCl"),
    ("sulfuric acid", "H2SO4"),
    ("nitric acid", "HNO3"),
    ("sodium hydroxide", "NaOH"),
    ("calcium carbonate", "CaCO3"),
    ("glucose", "C6H12O6"),
    ("ozone", "O3"),
    ("hydrogen peroxide", "H2O2"),
    ("ethanol", "C2H5OH"),
    ("sulfur dioxide", "SO2"),
    ("nitrogen dioxide", "NO2"),
    ("baking soda (sodium bicarbonate)", "NaHCO3"),
    ("potassium chloride", "KCl"),
    ("magnesium oxide", "MgO"),
    ("propane", "C3H8"),
    ("calcium hydroxide", "Ca(OH)2"),
    ("hydrogen sulfide", "H2S"),
    ("iron(III) oxide", "Fe2O3"),
]

# (quantity, SI unit)
UNITS = [
    ("force", "newton"),
    ("energy", "joule"),
    ("power", "watt"),
    ("electric charge", "coulomb"),
    ("electric current", "ampere"),
    ("electric potential difference", "volt"),
    ("electrical resistance", "ohm"),
    ("frequency", "hertz"),
    ("pressure", "pascal"),
    ("thermodynamic temperature", "kelvin"),
    ("mass", "kilogram"),
    ("length", "metre"),
    ("time", "second"),
    ("amount of substance", "mole"),
    ("luminous intensity", "candela"),
    ("capacitance", "farad"),
    ("inductance", "henry"),
    ("magnetic flux density", "tesla"),
    ("magnetic flux", "weber"),
    ("radioactivity (activity)", "becquerel"),
]

# (animal, class); the options are drawn from the six classes
ANIMAL_CLASSES = ["mammal", "bird", "reptile", "amphibian", "fish", "insect"]
ANIMALS = [
    ("dolphin", "mammal"),
    ("whale", "mammal"),
    ("bat", "mammal"),
    ("platypus", "mammal"),
    ("kangaroo", "mammal"),
    ("elephant", "mammal"),
    ("hedgehog", "mammal"),
    ("seal", "mammal"),
    ("penguin", "bird"),
    ("ostrich", "bird"),
    ("eagle", "bird"),
    ("owl", "bird"),
    ("kiwi", "bird"),
    ("flamingo", "bird"),
    ("emu", "bird"),
    ("crocodile", "reptile"),
    ("tortoise", "reptile"),
    ("iguana", "reptile"),
    ("cobra", "reptile"),
    ("chameleon", "reptile"),
    ("komodo dragon", "reptile"),
    ("frog", "amphibian"),
    ("toad", "amphibian"),
    ("salamander", "amphibian"),
    ("newt", "amphibian"),
    ("axolotl", "amphibian"),
    ("caecilian", "amphibian"),
    ("shark", "fish"),
    ("salmon", "fish"),
    ("seahorse", "fish"),
    ("tuna", "fish"),
    ("eel", "fish"),
    ("goldfish", "fish"),
    ("ant", "insect"),
    ("beetle", "insect"),
    ("butterfly", "insect"),
    ("grasshopper", "insect"),
    ("dragonfly", "insect"),
    ("honeybee", "insect"),
    ("termite", "insect"),
]

# (organ or part, what it does): "Which organ ...?"
ORGANS = [
    ("heart", "pumps blood around the body"),
    ("lungs", "exchange oxygen and carbon dioxide with the air"),
    ("kidneys", "filter waste from the blood to make urine"),
    ("liver", "produces bile and detoxifies the blood"),
    ("stomach", "begins protein digestion with acid"),
    ("small intestine", "absorbs most nutrients from food"),
    ("large intestine", "absorbs water from undigested food"),
    ("pancreas", "produces insulin"),
    ("brain", "coordinates thought and the nervous system"),
    ("skin", "is the body's largest organ"),
    ("spleen", "filters old red blood cells from the blood"),
    ("gallbladder", "stores bile"),
    ("bladder", "stores urine"),
    ("thyroid gland", "produces hormones that regulate metabolism"),
    ("retina", "holds the light-sensitive cells of the eye"),
    ("cochlea", "turns sound vibrations into nerve signals"),
]

# (cell part, what it does)
CELL_PARTS = [
    ("mitochondrion", "releases energy from food by aerobic respiration"),
    ("ribosome", "assembles proteins"),
    ("nucleus", "holds most of the cell's DNA"),
    ("chloroplast", "carries out photosynthesis"),
    ("cell membrane", "controls what enters and leaves the cell"),
    ("cell wall", "gives plant cells a rigid outer layer of cellulose"),
    ("vacuole", "stores water and dissolved substances in plant cells"),
    ("Golgi apparatus", "packages and sends out proteins"),
    ("lysosome", "breaks down waste with enzymes"),
]

# (instrument, what it measures)
INSTRUMENTS = [
    ("thermometer", "temperature"),
    ("barometer", "atmospheric pressure"),
    ("ammeter", "electric current"),
    ("voltmeter", "potential difference"),
    ("seismometer", "ground motion during earthquakes"),
    ("anemometer", "wind speed"),
    ("hygrometer", "humidity"),
    ("ohmmeter", "electrical resistance"),
    ("odometer", "distance travelled"),
    ("spectrometer", "the spectrum of light"),
    ("pH meter", "acidity"),
    ("rain gauge", "rainfall"),
    ("stopwatch", "elapsed time"),
    ("Geiger counter", "ionising radiation"),
    ("sphygmomanometer", "blood pressure"),
]

# (scientist, contribution)
SCIENTISTS = [
    ("Isaac Newton", "the three laws of motion"),
    ("Charles Darwin", "evolution by natural selection"),
    ("Gregor Mendel", "the laws of inheritance from pea plant experiments"),
    ("Albert Einstein", "the theory of relativity"),
    ("Marie Curie", "pioneering research on radioactivity"),
    ("Dmitri Mendeleev", "the periodic table of the elements"),
    ("Nicolaus Copernicus", "a Sun-centred model of the solar system"),
    ("Alexander Fleming", "the discovery of penicillin"),
    ("Louis Pasteur", "pasteurisation and the germ theory of disease"),
    ("Edward Jenner", "the first smallpox vaccine"),
    ("Johannes Kepler", "the laws of planetary motion"),
    ("Michael Faraday", "electromagnetic induction"),
    ("James Clerk Maxwell", "the equations of electromagnetism"),
    ("Alfred Wegener", "the theory of continental drift"),
    ("Ernest Rutherford", "the discovery of the atomic nucleus"),
    ("Rosalind Franklin", "X-ray images that revealed the structure of DNA"),
    ("Galileo Galilei", "telescope observations of Jupiter's moons"),
    ("Antoine Lavoisier", "the law of conservation of mass in chemical reactions"),
    ("Edwin Hubble", "evidence that the universe is expanding"),
    ("Robert Hooke", "naming the cell after looking at cork under a microscope"),
]

# (planet, fact unique to it among the eight planets)
PLANETS = [
    ("Mercury", "is closest to the Sun"),
    ("Venus", "has the hottest surface"),
    ("Earth", "has liquid water oceans on its surface"),
    ("Mars", "is known as the Red Planet"),
    ("Jupiter", "is the largest"),
    ("Saturn", "has the most prominent ring system"),
    ("Uranus", "rotates on its side, with an axial tilt of about 98 degrees"),
    ("Neptune", "is farthest from the Sun"),
]
PLANET_ORDER = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]

# (prefix, power of ten)
PREFIXES = [
    ("giga", 9),
    ("mega", 6),
    ("kilo", 3),
    ("hecto", 2),
    ("deci", -1),
    ("centi", -2),
    ("milli", -3),
    ("micro", -6),
    ("nano", -9),
    ("pico", -12),
]

# (question, answer, three wrong options): facts that fit no table
SINGLES = [
    (
        "Which gas do plants take in from the air for photosynthesis?",
        "carbon dioxide",
        ("oxygen", "nitrogen", "helium"),
    ),
    ("Which gas makes up most of Earth's atmosphere?", "nitrogen", ("oxygen", "carbon dioxide", "argon")),
    ("What is the boiling point of pure water at sea level?", "100 °C", ("90 °C", "110 °C", "212 °C")),
    ("What is the freezing point of pure water at sea level?", "0 °C", ("-10 °C", "4 °C", "32 °C")),
    (
        "What is the approximate speed of light in a vacuum?",
        "300,000 km/s",
        ("300 km/s", "30,000 km/s", "3,000,000 km/s"),
    ),
    (
        "What is the approximate acceleration due to gravity at Earth's surface?",
        "9.8 m/s²",
        ("1.6 m/s²", "3.7 m/s²", "98 m/s²"),
    ),
    ("What is the pH of pure water at 25 °C?", "7", ("0", "5", "14")),
    ("Which particle in an atom has a negative charge?", "electron", ("proton", "neutron", "nucleus")),
    ("Which particle in an atom has no electric charge?", "neutron", ("proton", "electron", "ion")),
    ("What holds the planets in orbit around the Sun?", "gravity", ("magnetism", "friction", "air pressure")),
    (
        "Which type of rock forms when magma or lava cools?",
        "igneous",
        ("sedimentary", "metamorphic", "fossil"),
    ),
    (
        "Which type of rock forms from layers of compacted sediment?",
        "sedimentary",
        ("igneous", "metamorphic", "volcanic"),
    ),
    (
        "What is the process by which liquid water becomes water vapour?",
        "evaporation",
        ("condensation", "precipitation", "freezing"),
    ),
    (
        "What is the process by which water vapour becomes liquid water?",
        "condensation",
        ("evaporation", "sublimation", "melting"),
    ),
    (
        "Which blood cells carry oxygen around the body?",
        "red blood cells",
        ("white blood cells", "platelets", "plasma cells"),
    ),
    (
        "Which blood cells help fight infection?",
        "white blood cells",
        ("red blood cells", "platelets", "nerve cells"),
    ),
    ("What is the hardest natural mineral?", "diamond", ("quartz", "talc", "gypsum")),
    ("What is the centre of an atom called?", "nucleus", ("electron shell", "orbit", "molecule")),
    (
        "Which vitamin does the skin make when exposed to sunlight?",
        "vitamin D",
        ("vitamin A", "vitamin C", "vitamin K"),
    ),
    ("A lack of which vitamin causes scurvy?", "vitamin C", ("vitamin A", "vitamin B12", "vitamin D")),
    ("What is the largest bone in the human body?", "femur", ("tibia", "humerus", "skull")),
    ("How many chambers does the human heart have?", "4", ("2", "3", "6")),
    (
        "What type of energy does a moving object have because of its motion?",
        "kinetic energy",
        ("potential energy", "chemical energy", "nuclear energy"),
    ),
    (
        "What is the name of the force that opposes motion between two surfaces in contact?",
        "friction",
        ("gravity", "tension", "buoyancy"),
    ),
    ("Which colour of visible light has the longest wavelength?", "red", ("blue", "green", "violet")),
    (
        "What is a substance that speeds up a chemical reaction without being used up?",
        "catalyst",
        ("reactant", "product", "solvent"),
    ),
    (
        "Which layer of the atmosphere contains the ozone layer?",
        "stratosphere",
        ("troposphere", "mesosphere", "thermosphere"),
    ),
    (
        "What is the name of the molecule that carries genetic information in most living things?",
        "DNA",
        ("ATP", "glucose", "cellulose"),
    ),
    ("Which organisms make their own food by photosynthesis?", "plants", ("fungi", "animals", "viruses")),
    (
        "What is the main gas released by plants during photosynthesis?",
        "oxygen",
        ("carbon dioxide", "methane", "hydrogen"),
    ),
    (
        "What kind of mirror is used in a car's side mirror to show a wider view?",
        "convex",
        ("concave", "flat", "parabolic"),
    ),
    (
        "What is the name for an animal that eats only plants?",
        "herbivore",
        ("carnivore", "omnivore", "decomposer"),
    ),
    (
        "What is the name for the path a planet follows around the Sun?",
        "orbit",
        ("axis", "equator", "eclipse"),
    ),
    ("Which metal is liquid at room temperature?", "mercury", ("iron", "aluminium", "copper")),
    (
        "What is the name of the change from a solid directly to a gas?",
        "sublimation",
        ("condensation", "melting", "freezing"),
    ),
    (
        "What does an electric circuit need for current to flow?",
        "a closed loop",
        ("an open switch", "a broken wire", "no power source"),
    ),
    ("Which of these materials is a good electrical conductor?", "copper", ("rubber", "glass", "wood")),
    ("Which of these materials is a good electrical insulator?", "rubber", ("copper", "silver", "aluminium")),
    (
        "What causes the seasons on Earth?",
        "the tilt of Earth's axis",
        ("the distance from the Moon", "the speed of Earth's rotation", "sunspots"),
    ),
    (
        "How long does Earth take to orbit the Sun once?",
        "about 365 days",
        ("about 24 hours", "about 30 days", "about 10 years"),
    ),
]


def _options(rng: random.Random, answer: str, pool: list[str]) -> tuple[str, str, str]:
    others = sorted({p for p in pool if p != answer})
    return tuple(rng.sample(others, 3))  # type: ignore[return-value]


def _table_questions(rng: random.Random) -> Iterator[Question]:
    symbols = [s for _, s, _ in ELEMENTS]
    names = [e for e, _, _ in ELEMENTS]
    for element, symbol, number in ELEMENTS:
        yield Question(
            "chemistry", f"What is the chemical symbol for {element}?", symbol, _options(rng, symbol, symbols)
        )
        yield Question(
            "chemistry",
            f"Which element has the chemical symbol {symbol}?",
            element,
            _options(rng, element, names),
        )
        yield Question(
            "chemistry", f"Which element has atomic number {number}?", element, _options(rng, element, names)
        )
    formulas = [f for _, f in COMPOUNDS]
    compounds = [c for c, _ in COMPOUNDS]
    for compound, formula in COMPOUNDS:
        yield Question(
            "chemistry",
            f"What is the chemical formula of {compound}?",
            formula,
            _options(rng, formula, formulas),
        )
        yield Question(
            "chemistry",
            f"Which substance has the chemical formula {formula}?",
            compound,
            _options(rng, compound, compounds),
        )
    units = [u for _, u in UNITS]
    quantities = [q for q, _ in UNITS]
    for quantity, unit in UNITS:
        yield Question("physics", f"What is the SI unit of {quantity}?", unit, _options(rng, unit, units))
        yield Question(
            "physics",
            f"Which quantity is measured in the SI unit called the {unit}?",
            quantity,
            _options(rng, quantity, quantities),
        )
    for animal, cls in ANIMALS:
        yield Question(
            "biology",
            f"To which group of animals does the {animal} belong?",
            cls,
            _options(rng, cls, ANIMAL_CLASSES),
        )
    organs = [o for o, _ in ORGANS]
    for organ, job in ORGANS:
        yield Question(
            "biology",
            f"Which part of the human body {job}?",
            f"the {organ}",
            tuple(f"the {o}" for o in _options(rng, organ, organs)),
        )  # type: ignore[arg-type]
    parts = [p for p, _ in CELL_PARTS]
    for part, job in CELL_PARTS:
        yield Question("biology", f"Which part of a cell {job}?", part, _options(rng, part, parts))
    tools = [t for t, _ in INSTRUMENTS]
    measures = [m for _, m in INSTRUMENTS]
    for tool, measure in INSTRUMENTS:
        yield Question(
            "physics",
            f"Which instrument measures {measure}?",
            f"a {tool}" if tool[0] not in "aeiou" else f"an {tool}",
            tuple(f"a {t}" if t[0] not in "aeiou" else f"an {t}" for t in _options(rng, tool, tools)),
        )  # type: ignore[arg-type]
        yield Question(
            "physics",
            f"What does {'an' if tool[0] in 'aeiou' else 'a'} {tool} measure?",
            measure,
            _options(rng, measure, measures),
        )
    people = [p for p, _ in SCIENTISTS]
    for person, work in SCIENTISTS:
        yield Question(
            "history of science",
            f"Which scientist is best known for {work}?",
            person,
            _options(rng, person, people),
        )
    planets = [p for p, _ in PLANETS]
    for planet, fact in PLANETS:
        yield Question(
            "astronomy", f"Which planet of the solar system {fact}?", planet, _options(rng, planet, planets)
        )
    for i, planet in enumerate(PLANET_ORDER):
        yield Question(
            "astronomy",
            f"Which planet is {ORDINALS[i]} from the Sun?",
            planet,
            _options(rng, planet, PLANET_ORDER),
        )
    powers = [f"10^{p}" for _, p in PREFIXES]
    for prefix, power in PREFIXES:
        yield Question(
            "physics",
            f"By what factor does the metric prefix '{prefix}-' multiply a unit?",
            f"10^{power}",
            _options(rng, f"10^{power}", powers),
        )
    for prompt, answer, wrong in SINGLES:
        yield Question("general science", prompt, answer, wrong)


def _number(x: float) -> str:
    return f"{x:g}"


def _numeric_options(
    rng: random.Random, answer: float, unit: str, candidates: list[float]
) -> tuple[str, str, str]:
    wrong = sorted({round(c, 6) for c in candidates if c > 0 and abs(c - answer) > 1e-9})
    return tuple(f"{_number(w)} {unit}" for w in rng.sample(wrong, 3))  # type: ignore[return-value]


def _calculations(rng: random.Random) -> Iterator[Question]:
    seen: set[str] = set()

    def once(q: Question) -> Iterator[Question]:
        if q.prompt not in seen:
            seen.add(q.prompt)
            yield q

    while len(seen) < 32:  # speed = distance / time
        t = rng.choice([2, 3, 4, 5, 6, 8])
        v = rng.choice([12, 15, 20, 25, 30, 40, 45, 50, 60, 70, 80, 90])
        d = v * t
        yield from once(
            Question(
                "calculation",
                f"A train travels {d} km in {t} hours at a steady speed. What is its speed?",
                f"{v} km/h",
                _numeric_options(rng, v, "km/h", [d * t, v * 2, v / 2, v + t, d - t, v * 3]),
            )
        )
    while len(seen) < 64:  # density = mass / volume
        vol = rng.choice([2, 4, 5, 8, 10, 20, 25])
        rho = rng.choice([0.5, 1, 1.5, 2, 2.5, 3, 4, 7.8, 8, 11])
        m = round(rho * vol, 6)
        yield from once(
            Question(
                "calculation",
                f"A block has a mass of {_number(m)} g and a volume of {vol} cm³. What is its density?",
                f"{_number(rho)} g/cm³",
                _numeric_options(rng, rho, "g/cm³", [m * vol, rho * 2, rho / 2, rho + 1, m + vol, rho * 10]),
            )
        )
    while len(seen) < 96:  # V = I R
        i = rng.choice([0.5, 1, 2, 3, 4, 5])
        r = rng.choice([2, 4, 6, 10, 12, 20, 50, 100])
        v = round(i * r, 6)
        yield from once(
            Question(
                "calculation",
                f"A current of {_number(i)} A flows through a {r} Ω resistor. What is the voltage across it?",
                f"{_number(v)} V",
                _numeric_options(rng, v, "V", [r / i, i / r, v * 2, v / 2, i + r, v + 10]),
            )
        )
    while len(seen) < 128:  # F = m a
        m = rng.choice([2, 3, 5, 10, 20, 50, 1200])
        a = rng.choice([0.5, 2, 3, 4, 5, 9.8])
        f = round(m * a, 6)
        yield from once(
            Question(
                "calculation",
                f"What net force gives a {m} kg object an acceleration of {_number(a)} m/s²?",
                f"{_number(f)} N",
                _numeric_options(rng, f, "N", [m / a, m + a, f * 2, f / 2, f * 10, a / m]),
            )
        )


def build() -> list[dict]:
    rng = random.Random(SEED)
    questions = list(_table_questions(rng)) + list(_calculations(rng))
    prompts = [q.prompt for q in questions]
    assert len(set(prompts)) == len(prompts), "duplicate question"
    for q in questions:
        assert q.answer not in q.wrong and len(set(q.wrong)) == 3, q
    rng.shuffle(questions)
    questions = questions[: len(questions) // 8 * 8]  # a multiple of 8: equal letters in each split
    records = []
    for i, q in enumerate(questions):
        split = "train" if i % 2 == 0 else "eval"
        position = (i // 2) % 4  # within a split, the answer cycles A, B, C, D
        wrong = list(q.wrong)
        rng.shuffle(wrong)
        choices = [*wrong[:position], q.answer, *wrong[position:]]
        records.append(
            {
                "id": f"sci-{i:03d}",
                "split": split,
                "category": q.category,
                "prompt": q.prompt,
                "choices": choices,
                "answer": position,
            }
        )
    return records


def main() -> None:
    records = build()
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "probes.jsonl").open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    n_train = sum(r["split"] == "train" for r in records)
    print(f"{len(records)} questions ({n_train} train, {len(records) - n_train} eval) -> {OUT}")


if __name__ == "__main__":
    main()
