"""How one person's records drift apart: typos, case, whitespace, phone spellings, swapped
names, folded umlauts, nicknames, gmail variants. Each function maps an object array to a
new one and touches only the rows a boolean mask selects (Python runs only on those rows)."""

from __future__ import annotations

import numpy as np

from .population import ascii_fold
from .vocabulary import NICKNAMES

GMAIL = ("gmail.com", "googlemail.com")


def apply(values: np.ndarray, mask: np.ndarray, fn) -> np.ndarray:
    out = values.copy()
    idx = np.nonzero(mask)[0]
    out[idx] = [fn(v, i) if isinstance(v, str) and v else v for i, v in zip(idx, values[idx], strict=True)]
    return out


def typo(rng: np.random.Generator):
    """A dropped, doubled or swapped letter (never the first one)."""
    def fn(text: str, _i: int) -> str:
        if len(text) < 4:
            return text
        k = int(rng.integers(1, len(text) - 1))
        match int(rng.integers(0, 3)):
            case 0:
                return text[:k] + text[k + 1:]
            case 1:
                return text[:k] + text[k] + text[k:]
            case _:
                return text[:k] + text[k + 1] + text[k] + text[k + 2:]
    return fn


def whitespace(rng: np.random.Generator):
    def fn(text: str, _i: int) -> str:
        return ("  " + text, text + " ", text.replace(" ", "  ") + "  ")[int(rng.integers(0, 3))]
    return fn


def case(rng: np.random.Generator):
    def fn(text: str, _i: int) -> str:
        return (text.upper(), text.lower())[int(rng.integers(0, 2))]
    return fn


def fold(text: str, _i: int) -> str:
    return ascii_fold(text)


def nickname(text: str, _i: int) -> str:
    return NICKNAMES.get(text, text)


def gmail_variant(rng: np.random.Generator):
    """Same mailbox, other spelling: dots moved or a +tag on gmail, case elsewhere."""
    def fn(email: str, _i: int) -> str:
        local, _, domain = email.partition("@")
        if domain in GMAIL:
            if rng.random() < 0.5:
                plain = local.replace(".", "")
                k = int(rng.integers(1, max(len(plain), 2)))
                local = plain[:k] + "." + plain[k:]
            else:
                local = f"{local}+{('shop', 'news', 'promo', 'x')[int(rng.integers(0, 4))]}"
            domain = GMAIL[int(rng.integers(0, 2))]
            return f"{local}@{domain}"
        return email.upper() if rng.random() < 0.5 else email.capitalize()
    return fn


def other_address(rng: np.random.Generator):
    """Another mailbox of the same person: a work address or another provider."""
    providers = ("gmail.com", "outlook.com", "yahoo.com", "mail.com", "proton.me", "icloud.com")

    def fn(email: str, _i: int) -> str:
        local = email.partition("@")[0].replace(".", "_")
        return f"{local}{int(rng.integers(1, 99))}@{providers[int(rng.integers(0, len(providers)))]}"
    return fn


def phone(numbers: np.ndarray, calling_codes: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Write national numbers (area code + 7 digits) in one of six spellings per row."""
    out = np.empty(len(numbers), dtype=object)
    for i, (num, cc, s) in enumerate(zip(numbers, calling_codes, style, strict=True)):
        area, line = num[:-7], num[-7:]
        out[i] = (f"+{cc} {area} {line}", f"0{area} {line}", f"00{cc}{area}{line}",
                  f"(0{area}) {line[:3]}-{line[3:]}", f"+{cc}{area}{line}",
                  f"+{cc} ({area}) {line[:3]} {line[3:]}")[s]
    return out
