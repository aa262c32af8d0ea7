"""Phrases like the competition's: addresses, phone numbers and URLs (train), sentences (supplemental).

All phrases are lower case, inside the 59-character vocabulary and at most 31 characters (the competition's longest
train phrase). The word lists are small and invented for this project; the formats imitate the kinds of strings the
competition's train set holds ("1383 william lanier", "+55-0-12-6234-5124", "www.freem.ne.jp", "scales/kuhaylah").
The supplemental set repeats a pool of a few hundred sentences, each signed by several participants, as the real
supplemental set (about 500 distinct phrases) does.
"""

from __future__ import annotations

import numpy as np

from aslfs.vocab import MAX_PHRASE_LEN, invalid_chars

NAMES = (
    "adams baker carter davis evans foster garcia harris irving jackson kelly lopez miller nelson owens parker "
    "quinn reed stewart turner vasquez walker young zimmer lanier franklin hudson monroe wilson taylor brooks "
    "coleman dixon ellis fisher grant hayes jensen knight lambert morgan norris ortiz perry ramos sutton vaughn "
    "webb maria john anna james linda robert sarah david emily daniel grace henry olivia lucas sofia noah mia "
    "liam ella ethan ava mateo chloe kai nora omar leila yuki hana ravi priya"
).split()
STREETS = (
    "main oak maple pine cedar elm washington lake hill park sunset river spring church highland forest meadow "
    "willow cherry walnut chestnut ridge valley lincoln jefferson madison center mill college union prospect "
    "creekhouse greenwood fairview orchard harbor bay mountain canyon desert prairie summit birch aspen juniper"
).split()
SUFFIXES = (
    "street st road rd avenue ave lane ln drive dr court ct boulevard blvd way place pl circle cir trail parkway "
    "highway hwy terrace loop"
).split()
DIRECTIONS = "north south east west northeast northwest southeast southwest n s e w ne nw se sw".split()
UNITS = ("apt", "unit", "suite", "#", "ste", "room")
WORDS = (
    "blue cloud data shop photo music game news book travel food home tech smart green city star net web mail "
    "art code play learn open fast bright happy little big river stone fire wind snow tree sun moon sky sea "
    "pixel quick swift zen ninja rocket market studio health garden coffee pizza movie sport team kids cool "
    "math map bank card cash deal job fit yoga pet dog cat bird fish farm wine tea"
).split()
TLDS = "com org net edu gov io co uk de jp fr ca au us info biz me tv ne.jp co.uk com.au".split()
PATHS = "about contact index home login search blog page docs help shop cart user news faq wiki".split()

SUBJECTS = ["i", "we", "you", "they", "my friend", "my mother", "my brother", "the teacher", "our team",
            "the doctor", "my sister", "he", "she", "the kids", "the baby", "my dad", "everyone"]
VERBS_PLURAL = ["like", "love", "need", "want", "see", "have", "make", "find", "bring", "read", "play", "cook",
                "watch", "paint", "clean", "sell", "buy", "fix", "visit", "call"]
OBJECTS = ["the book", "a cake", "the car", "my phone", "the door", "a letter", "the dog", "a new job", "the bus",
           "this movie", "that song", "the garden", "a small house", "the window", "the game", "some water",
           "the map", "a red hat", "the lamp", "our house", "fresh bread", "the news", "a big box", "the keys"]
PLACES = ["at home", "in the park", "at school", "at work", "in the city", "by the lake", "on the bus",
          "after lunch", "every day", "last night", "this week", "on sunday", "in june", "at noon", "today"]
FIXED = ["how are you", "nice to meet you", "see you later", "thank you very much", "what time is it",
         "where is the bathroom", "i am learning sign language", "please sign slowly", "happy birthday",
         "good morning", "have a nice day", "it is raining again", "the sky is very blue",
         "i don't know", "we're late again", "that's a great idea", "can you help me", "the food is ready",
         "my name is", "do you understand", "turn off the lights", "let's go to the beach",
         "i will call you tomorrow", "the store is closed", "where do you live", "i love my family"]


def _third_person(verb: str) -> str:
    if verb.endswith(("sh", "ch", "x", "s")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _number(rng: np.random.Generator, lo_digits: int, hi_digits: int) -> str:
    n = int(rng.integers(lo_digits, hi_digits + 1))
    first = str(rng.integers(1, 10))
    return first + "".join(str(d) for d in rng.integers(0, 10, n - 1))


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, n))


def _pick(rng: np.random.Generator, items) -> str:
    return items[int(rng.integers(len(items)))]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def address(rng: np.random.Generator) -> str:
    """A street address: "1234 main street", "56 nw cedar ave apt 4", "6920 northeast 661st road"."""
    parts = [_number(rng, 1, 5)]
    if rng.random() < 0.3:
        parts.append(_pick(rng, DIRECTIONS))
    r = rng.random()
    if r < 0.15:
        parts.append(_ordinal(int(rng.integers(1, 700))))
    elif r < 0.35:
        parts.append(_pick(rng, NAMES))
        if rng.random() < 0.5:
            parts.append(_pick(rng, NAMES))
    else:
        parts.append(_pick(rng, STREETS))
    if rng.random() < 0.85:
        parts.append(_pick(rng, SUFFIXES))
    if rng.random() < 0.2:
        unit = _pick(rng, UNITS)
        number = _number(rng, 1, 3) + (str(_pick(rng, "abcd")) if rng.random() < 0.2 else "")
        parts.append(unit + number if unit == "#" else f"{unit} {number}")
    return " ".join(parts)


def phone(rng: np.random.Generator) -> str:
    """A phone number: "+1-555-012-3456", "(415) 555-0182", "+44 20 7946 0958", "176-7-52-5000"."""
    r = rng.random()
    if r < 0.35:
        return f"+{_number(rng, 1, 3)}-{_digits(rng, 3)}-{_digits(rng, 3)}-{_digits(rng, 4)}"
    if r < 0.55:
        return f"{_digits(rng, 3)}-{_digits(rng, 3)}-{_digits(rng, 4)}"
    if r < 0.65:
        return f"({_digits(rng, 3)}) {_digits(rng, 3)}-{_digits(rng, 4)}"
    if r < 0.75:
        return f"+{_number(rng, 1, 2)} {_digits(rng, 2)} {_digits(rng, 4)} {_digits(rng, 4)}"
    if r < 0.85:
        return f"{_digits(rng, 3)}.{_digits(rng, 3)}.{_digits(rng, 4)}"
    groups = [_digits(rng, int(rng.integers(1, 5))) for _ in range(int(rng.integers(3, 6)))]
    return ("+" if rng.random() < 0.5 else "") + "-".join(groups)


def _domain(rng: np.random.Generator) -> str:
    word = _pick(rng, WORDS)
    r = rng.random()
    if r < 0.4:
        word += _pick(rng, WORDS)
    elif r < 0.55:
        word += "-" + _pick(rng, WORDS)
    elif r < 0.65:
        word += _digits(rng, int(rng.integers(1, 3)))
    return f"{word}.{_pick(rng, TLDS)}"


def url(rng: np.random.Generator) -> str:
    """A web or mail address: "www.bluecloud.com", "https://shop.io/cart", "maria_k@mail.net", "city.org/~webb"."""
    domain = _domain(rng)
    r = rng.random()
    if r < 0.3:
        return "www." + domain
    if r < 0.45:
        return f"{_pick(rng, ['https://', 'http://'])}{domain}/{_pick(rng, PATHS)}"
    if r < 0.6:
        sep = _pick(rng, [".", "_", "", "-"])
        return f"{_pick(rng, NAMES)}{sep}{_pick(rng, NAMES)[:int(rng.integers(1, 6))]}@{domain}"
    if r < 0.7:
        return f"{domain}/~{_pick(rng, NAMES)}"
    if r < 0.8:
        return f"{domain}/{_pick(rng, PATHS)}?{_pick(rng, ['id', 'q', 'p', 'page'])}={_number(rng, 1, 4)}"
    if r < 0.9:
        return f"{domain}/{_pick(rng, NAMES)}/{_pick(rng, WORDS)}"
    return f"{_pick(rng, WORDS)}.{_pick(rng, WORDS)}.{_pick(rng, TLDS)}"


def sentence(rng: np.random.Generator) -> str:
    """A short everyday sentence: "my sister likes the garden", "we cook fresh bread at home"."""
    if rng.random() < 0.25:
        return _pick(rng, FIXED)
    subject = _pick(rng, SUBJECTS)
    verb = _pick(rng, VERBS_PLURAL)
    if subject in ("he", "she", "everyone") or subject.startswith(("my ", "the teacher", "the doctor", "our",
                                                                     "the baby")):
        verb = _third_person(verb)
    words = [subject, verb, _pick(rng, OBJECTS)]
    if rng.random() < 0.5:
        words.append(_pick(rng, PLACES))
    return " ".join(words)


TRAIN_KINDS = {"address": (address, 0.4), "phone": (phone, 0.25), "url": (url, 0.35)}


def _fit(fn, rng: np.random.Generator, max_len: int = MAX_PHRASE_LEN) -> str:
    for _ in range(100):
        phrase = fn(rng)
        if 0 < len(phrase) <= max_len and not invalid_chars(phrase):
            return phrase
    raise RuntimeError(f"{fn.__name__}: could not make a phrase of at most {max_len} characters")


def train_phrases(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` train-set phrases: addresses, phone numbers and URLs in the proportions of ``TRAIN_KINDS``."""
    kinds = list(TRAIN_KINDS.values())
    probs = np.array([p for _, p in kinds])
    choice = rng.choice(len(kinds), size=n, p=probs / probs.sum())
    return [_fit(kinds[k][0], rng) for k in choice]


def supplemental_phrases(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` supplemental phrases drawn from a pool of about n/5 distinct sentences (at least 10, at most 500)."""
    pool_size = int(np.clip(n // 5, 10, 500))
    pool: list[str] = []
    seen: set[str] = set()
    for _ in range(pool_size * 20):
        if len(pool) >= pool_size:
            break
        s = _fit(sentence, rng)
        if s not in seen:
            seen.add(s)
            pool.append(s)
    return [pool[i] for i in rng.integers(0, len(pool), n)]
