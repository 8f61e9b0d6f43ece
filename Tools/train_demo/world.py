"""The synthetic world behind cpiscope's bundled demo trajectory (see Demo/README.md).

Everything here is a pure function of a seed: fictional people and countries with made-up but
pronounceable names, their attributes, the pretraining sentences that state the facts, and the
instruction-finetuning (IFT) points in the three kinds of the paper's Section 4.1
(Goyal, Baek et al., "Context-Parametric Inversion: Why Instruction Finetuning Can Worsen Context
Reliance"):

  C    context-critical: the context states a fact about a subject the model never saw in pretraining,
       so only the context can give the answer;
  C+S  non-context-critical: the context states a memorised fact (context and memory agree);
  S    fact recall: a question about a memorised fact with no context.

Held-out conflict probes pair a memorised subject with a context that states a *different* answer
(the counterfactual); they never appear in any training text.
"""
import random
from dataclasses import dataclass

# Relations: (kind of subject, answer pool, statement paraphrases, question). "{s}" = subject, "{a}" = answer.
# Context sentences reuse the pretraining paraphrases, so a context reads like text the model knows.
RELATIONS = {
    "birthplace": {
        "subject": "person",
        "pool": "city",
        "statements": ["{s} was born in {a}.", "The birthplace of {s} is {a}.", "{s} is a native of {a}."],
        "question": "Where was {s} born?",
        "prefix": "{s} was born in",
    },
    "profession": {
        "subject": "person",
        "pool": "job",
        "statements": ["{s} works as a {a}.", "The profession of {s} is {a}.", "By trade, {s} is a {a}."],
        "question": "What is the profession of {s}?",
        "prefix": "{s} works as a",
    },
    "capital": {
        "subject": "country",
        "pool": "city",
        "statements": ["The capital of {s} is {a}.", "{s} is governed from {a}.", "The seat of government of {s} is {a}."],
        "question": "What is the capital of {s}?",
        "prefix": "The capital of {s} is",
    },
}

# Answer pools. Cities are made up; jobs are ordinary English words that start with a consonant
# (so "works as a {job}" is grammatical).
CITIES = ["Tarmun", "Velisk", "Orbano", "Kessad", "Marvix", "Dunholt", "Pirsa", "Zelmar", "Quorra", "Belvan",
          "Sorrik", "Lumora", "Hastel", "Nivra", "Galdor", "Fennick", "Rovena", "Yrsten", "Calvor", "Wethra",
          "Mondra", "Talvik", "Esmora", "Brisko", "Jorvan", "Kalmi", "Ulvar", "Drossa", "Pelgar", "Nerun",
          "Vostra", "Harvik"]
JOBS = ["baker", "sailor", "painter", "farmer", "doctor", "teacher", "weaver", "potter", "miner", "tailor",
        "lawyer", "butcher", "singer", "hunter", "soldier", "nurse", "writer", "cook", "mason", "pilot"]
POOLS = {"city": CITIES, "job": JOBS}

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr", "st",
          "tr", "sh", "th", "ch"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou"]
CODAS = ["", "", "", "n", "r", "l", "s", "m", "th", "k"]


def _syllable(rng):
    return rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)


def _word(rng, lo, hi):
    return "".join(_syllable(rng) for _ in range(rng.randint(lo, hi))).capitalize()


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    answer: str


def make_subjects(rng, n_people, n_countries):
    """Unique person names ("First Last") and country names (one word ending in -ia/-or/-and)."""
    taken = set(CITIES) | {j.capitalize() for j in JOBS}
    people, countries = [], []
    while len(people) < n_people:
        name = _word(rng, 1, 2) + " " + _word(rng, 2, 2)
        if name not in taken:
            taken.add(name)
            people.append(name)
    while len(countries) < n_countries:
        name = _word(rng, 2, 2) + rng.choice(["ia", "or", "and"])
        if name not in taken:
            taken.add(name)
            countries.append(name)
    return people, countries


def facts_for(rng, people, countries):
    """Each person gets a birthplace and a profession, each country a capital, drawn uniformly."""
    out = []
    for p in people:
        out.append(Fact(p, "birthplace", rng.choice(CITIES)))
        out.append(Fact(p, "profession", rng.choice(JOBS)))
    for c in countries:
        out.append(Fact(c, "capital", rng.choice(CITIES)))
    return out


def statement(fact, k):
    return RELATIONS[fact.relation]["statements"][k].format(s=fact.subject, a=fact.answer)


def question(fact):
    return RELATIONS[fact.relation]["question"].format(s=fact.subject)


@dataclass
class World:
    memorised: list      # facts stated in pretraining
    unknown: list        # facts about subjects never seen in pretraining (source of C points)
    probe_facts: list    # memorised facts reserved for the held-out conflict probes (never in IFT)
    ift_known: list      # memorised facts used for C+S and S points


def build_world(seed, n_people=240, n_countries=60, n_unknown_people=300, n_unknown_countries=60,
                n_probe=48, probe_overlap=False):
    """probe_overlap=False: probe facts are held out of IFT entirely (their subjects' *other* facts may
    appear in IFT). probe_overlap=True: probe facts also appear as C+S and S points (true context), only
    the counterfactual probe itself is unseen."""
    rng = random.Random(seed)
    people, countries = make_subjects(rng, n_people + n_unknown_people, n_countries + n_unknown_countries)
    known_people, unknown_people = people[:n_people], people[n_people:]
    known_countries, unknown_countries = countries[:n_countries], countries[n_countries:]
    memorised = facts_for(rng, known_people, known_countries)
    unknown = facts_for(rng, unknown_people, unknown_countries)
    # Probe facts: birthplace and capital facts (city answers) plus professions, drawn evenly.
    by_rel = {r: [f for f in memorised if f.relation == r] for r in RELATIONS}
    probe = []
    per = n_probe // len(RELATIONS)
    for r in RELATIONS:
        cand = list(by_rel[r])
        rng.shuffle(cand)
        probe += cand[:per]
    probe_set = set(probe)
    ift_known = memorised if probe_overlap else [f for f in memorised if f not in probe_set]
    return World(memorised, unknown, probe, ift_known)


def pretraining_texts(world, qa_form=True):
    """Every memorised fact in every paraphrase, one sentence per training sequence; with qa_form also as
    a quiz line "Q: {question} A: {answer}." (a different template from the IFT one)."""
    out = [statement(f, k) for f in world.memorised for k in range(len(RELATIONS[f.relation]["statements"]))]
    if qa_form:
        out += [f"Q: {question(f)} A: {f.answer}." for f in world.memorised]
    return out


def reading_document(rng, world, forbidden, n_distract=0, p_quiz=1.0):
    """A pretraining document that exercises in-context reading, as ordinary web text does: a fact about
    a throw-away subject (a fresh random name, never a world subject), n_distract true sentences about
    memorised subjects (order shuffled), then the same fact again in another paraphrase and, with
    probability p_quiz, as a quiz line "Q: {question} A: {answer}." (before or after the paraphrase).
    Throw-away subjects are drawn anew each time, so the only way to predict the repeated answer is to
    read it from earlier in the document. Example (p_quiz = 1, n_distract = 1; "Drubikor" is the
    throw-away subject, "Krailgan Drurnam" a memorised one):
      "The profession of Krailgan Drurnam is tailor. Drubikor is governed from Brisko.
       Q: What is the capital of Drubikor? A: Brisko. The capital of Drubikor is Brisko."
    With p_quiz = 0, quiz lines appear only in pretraining_texts, for memorised facts."""
    rel = rng.choice(list(RELATIONS))
    while True:
        name = (_word(rng, 1, 2) + " " + _word(rng, 2, 2)) if RELATIONS[rel]["subject"] == "person" \
            else _word(rng, 2, 2) + rng.choice(["ia", "or", "and"])
        if name not in forbidden:
            break
    f = Fact(name, rel, rng.choice(POOLS[RELATIONS[rel]["pool"]]))
    i, j = rng.sample(range(3), 2)
    first = [statement(f, i)]
    for _ in range(n_distract):
        d = world.memorised[rng.randrange(len(world.memorised))]
        first.append(statement(d, rng.randrange(3)))
    rng.shuffle(first)
    last = [statement(f, j)]
    if p_quiz >= 1.0 or rng.random() < p_quiz:  # (no draw at p_quiz = 1: the stream the demo was tuned on)
        quiz = f"Q: {question(f)} A: {f.answer}."
        last = [statement(f, j), quiz] if rng.random() < 0.5 else [quiz, statement(f, j)]
    return " ".join(first + last)


def world_names(world):
    return {f.subject for f in world.memorised + world.unknown}


def make_context(fact, rng, distractor_pool, n_distract):
    """The fact's sentence (random paraphrase) plus n_distract true sentences about other subjects, in
    random order."""
    sents = [statement(fact, rng.randrange(3))]
    while len(sents) < 1 + n_distract:
        d = distractor_pool[rng.randrange(len(distractor_pool))]
        if d.subject != fact.subject:
            sents.append(statement(d, rng.randrange(3)))
    rng.shuffle(sents)
    return " ".join(sents)


def tokenizer_corpus(world):
    """Text the tokenizer is trained on: the pretraining sentences plus every world fact (memorised and
    unknown) in the prompt templates, so the vocabulary does not depend on the IFT mixture."""
    out = pretraining_texts(world)
    for f in world.memorised + world.unknown:
        out.append(plain_prompt(statement(f, 0), question(f)) + " " + f.answer)
        out.append(recall_prompt(question(f)) + " " + f.answer)
    return out


def plain_prompt(context, q):
    """The project's `plain` probe template."""
    return f"Context: {context}\nQuestion: {q}\nAnswer:"


def recall_prompt(q):
    """S points: the same template with no context line."""
    return f"Question: {q}\nAnswer:"


def ift_points(world, rng, n_c, n_cs, n_s, n_distract=0):
    """Returns (points, c_facts). A point is (kind, prompt, answer). C points use distinct unknown facts
    (a finite set, repeated every epoch: the paper's Proposition 3 setting); C+S and S points are drawn
    from the memorised facts kept for IFT."""
    unk = list(world.unknown)
    rng.shuffle(unk)
    c_facts = unk[:n_c]
    pool = world.ift_known + c_facts  # distractor sentences: true facts from the IFT material
    pts = []
    for f in c_facts:
        pts.append(("C", plain_prompt(make_context(f, rng, pool, n_distract), question(f)), f.answer))
    known = list(world.ift_known)
    for i in range(n_cs):
        f = known[rng.randrange(len(known))]
        pts.append(("C+S", plain_prompt(make_context(f, rng, pool, n_distract), question(f)), f.answer))
    for i in range(n_s):
        f = known[rng.randrange(len(known))]
        pts.append(("S", recall_prompt(question(f)), f.answer))
    return pts, c_facts


def conflict_probes(world, rng, first_token, n_distract=0):
    """Held-out conflict probes: memorised subject, context stating a counterfactual answer from the same
    pool whose first token differs from the memorised answer's first token (so M_C is well defined)."""
    out = []
    for i, f in enumerate(world.probe_facts):
        pool = POOLS[RELATIONS[f.relation]["pool"]]
        choices = [a for a in pool if a != f.answer and first_token(a) != first_token(f.answer)]
        cf = rng.choice(choices)
        ctx = make_context(Fact(f.subject, f.relation, cf), rng, world.memorised, n_distract)
        out.append({"id": f"demo-{i:03d}", "context": ctx, "question": question(f), "answer": cf,
                    "memory_answer": f.answer, "subject": f.subject, "relation": f.relation})
    return out


def fresh_context_probes(world, rng, n, exclude, n_distract=0):
    """Diagnostic: unknown subjects never used in IFT, with a context (pure reading ability)."""
    cand = [f for f in world.unknown if f not in exclude]
    rng.shuffle(cand)
    return [(plain_prompt(make_context(f, rng, world.memorised, n_distract), question(f)), f.answer)
            for f in cand[:n]]
