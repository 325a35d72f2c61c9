"""How many bits of entropy a secret key seems to have: a simple estimate, explained.

Production wants ``SESSION_KEY`` random; what people type instead is a phrase, a
keyboard or alphabet run, or a pattern repeated. The estimate, in bits:

* each character is worth log2 of the smallest usual alphabet that holds the whole
  key: hexadecimal (16), base32 (32), letters and digits (62), URL-safe base64 (64),
  base64 (65), else printable ASCII (95);
* a character that continues a run of the two before it (``aaa``, ``abc``, ``321``, or
  along a keyboard row, ``qwe``) is worth nothing;
* a key that reads as words (most of it letters, in one case but for capitals, nearly
  all of them in words of three or more letters, 30% or more vowels: ``my-secret-key``,
  ``MySecretKey``) is worth 13 bits a distinct word -- what a word drawn at random
  from Diceware's 7,776 is worth -- and its other characters once per kind.

``secrets.token_urlsafe(48)`` scores about 380 and never below 350 in 100,000 draws,
``secrets.token_hex(32)`` about 250 (never below 220); the alphabet
``abcdefghijklmnopqrstuvwxyz0123456789`` scores 24 and
``my-super-secret-session-key-for-production`` 84. Under 160 bits is refused in
production. Random keys of letters alone, in one case, can read as words (7% of 40
lowercase letters do): generate keys with ``token_urlsafe`` or ``token_hex``.
"""

from __future__ import annotations

import math
import re
import string

MIN_KEY_BITS = 160
# A word picked at random from Diceware's list of 7,776 carries log2(7776) bits.
WORD_BITS = 13
# Smallest first: a key is judged in the smallest one that holds all its characters.
ALPHABETS: tuple[tuple[frozenset[str], int], ...] = (
    (frozenset(string.digits + "abcdef"), 16),
    (frozenset(string.digits + "ABCDEF"), 16),
    (frozenset(string.ascii_uppercase + "234567="), 32),
    (frozenset(string.ascii_letters + string.digits), 62),
    (frozenset(string.ascii_letters + string.digits + "-_"), 64),
    (frozenset(string.ascii_letters + string.digits + "+/="), 65),
)
PRINTABLE = 95
# Where each key is on a QWERTY keyboard: rows 100 apart, so a run stays in one row.
KEYBOARD = {
    char: 100 * row + column
    for row, keys in enumerate(("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"))
    for column, char in enumerate(keys)
}
# Runs of letters, split where the case changes: "MySecretKEY" -> My, Secret, KEY.
WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def key_bits(key: str) -> float:
    """The estimated entropy of ``key`` in bits (see the module's description)."""
    if not key:
        return 0.0
    size = next((size for alphabet, size in ALPHABETS if set(key) <= alphabet), PRINTABLE)
    per_character = math.log2(size)
    free = _not_in_runs(key)
    if size > 16 and _reads_as_words(key):
        words = WORDS.findall(key)
        distinct = {word.lower() for word in words if len(word) >= 3}
        others = {char for char, counts in zip(key, free, strict=True) if counts}
        others -= set(string.ascii_letters)
        return WORD_BITS * len(distinct) + per_character * len(others)
    return per_character * sum(free)


def _reads_as_words(key: str) -> bool:
    """Mostly letters, of one case but for capitals (random keys mix cases evenly), nearly
    all of them in words of three letters or more, with vowels as often as in words."""
    words = WORDS.findall(key)
    letters = sum(len(word) for word in words)
    if not words or letters < 0.6 * len(key):
        return False
    lower = sum(char.islower() for char in key)
    in_words = sum(len(word) for word in words if len(word) >= 3)
    one_case = lower >= 0.8 * letters or lower <= 0.2 * letters
    # Words have vowels: about 38% of an English text's letters, 19% of random ones.
    vowels = sum(char in "aeiouAEIOU" for char in key)
    return one_case and in_words >= 0.9 * letters and vowels >= 0.3 * letters


def _not_in_runs(key: str) -> list[bool]:
    """For each character: False when it continues a run of the two before it (the same
    step of -1, 0 or +1 twice, in the alphabet or along a keyboard row), else True."""
    alphabet = [ord(char) for char in key]
    keyboard = [KEYBOARD.get(char.lower(), -10 * (index + 2)) for index, char in enumerate(key)]
    return [
        index < 2 or not (_in_run(alphabet, index) or _in_run(keyboard, index))
        for index in range(len(key))
    ]


def _in_run(positions: list[int], index: int) -> bool:
    step = positions[index] - positions[index - 1]
    return abs(step) <= 1 and step == positions[index - 1] - positions[index - 2]
