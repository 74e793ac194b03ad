"""One customer across channels: handoff codes, phone numbers as evidence, channel names.

Pure functions; the store keeps the codes (hashed) and the links, the router drives them.

A handoff code is `LINK-` and 12 characters of Crockford's base32 (60 random bits, from
`secrets`): unguessable, short enough to type in an SMS, and legal in a Telegram /start
payload, a Messenger ref, a wa.me text and the local part of an email address.  The code table
keeps only its SHA-256 (the invitation sent is in the conversation's history, like any reply).
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets

import phonenumbers

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 12
PREFIX = "LINK-"
# Anywhere in a text, any case: a customer may retype it, a mail server may lower-case it.
_CODE = re.compile(r"(?<![0-9A-Za-z])LINK-([0-9A-Za-z]{12})(?![0-9A-Za-z])", re.IGNORECASE)
_CROCKFORD_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})

LABELS = {"telegram": "Telegram", "sms": "SMS", "whatsapp": "WhatsApp",
          "messenger": "Messenger", "email": "Email", "twilio": "SMS/WhatsApp"}


def new_code() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def find_code(*texts: str | None) -> str | None:
    """The first handoff code in these texts, normalized (`LINK-` + upper case), or None."""
    for text in texts:
        if not text:
            continue
        found = _CODE.search(text)
        if found is not None:
            body = found.group(1).upper().translate(_CROCKFORD_ALIASES)
            if all(ch in ALPHABET for ch in body):
                return PREFIX + body
    return None


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@functools.lru_cache(maxsize=4096)  # every Twilio message carries one; parsing costs ~50 µs
def normalize_phone(raw: str | None) -> str | None:
    """A number in E.164 (`+14155552671`), or None unless it is a possible international
    number.  `whatsapp:` prefixes and formatting are dropped; no region is guessed, so a
    number without its country code proves nothing."""
    if not raw:
        return None
    text = raw.strip().removeprefix("whatsapp:").strip()
    if not text.startswith("+"):
        if text.isdigit() and len(text) >= 8:  # Telegram sends contacts' numbers without "+"
            text = "+" + text
        else:
            return None
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def channel_label(channel: str) -> str:
    return LABELS.get(channel, channel.replace("_", " ").title())

