"""What the widget says, in each language it speaks; a site may override any text.

The page's `lang` (or else the browser's language) picks one of the site's `languages`."""

from __future__ import annotations

from connectors.webchat.settings import TEXT_KEYS as KEYS

TEXTS: dict[str, dict[str, str]] = {
    "en": dict(zip(KEYS, (
        "Open chat", "Close chat", "Send message", "Send", "Message", "Type your message…",
        "Sending…", "Sent", "Connecting…", "Messages",
        "We could not verify who you are, so the chat is not available.",
        "You are sending messages too fast; this one will be retried.", "Dismiss",
        "Attach a file", "The file could not be sent:",
        "We are offline right now.", "We are offline right now; we are back {when}.",
        "Leave your email address and we will answer by email (and here).",
        "Your email address"), strict=True)),
    "sr-Latn": dict(zip(KEYS, (
        "Otvori čet", "Zatvori čet", "Pošalji poruku", "Pošalji", "Poruka", "Napišite poruku…",
        "Šalje se…", "Poslato", "Povezivanje…", "Poruke",
        "Nismo mogli da potvrdimo ko ste, pa čet nije dostupan.",
        "Šaljete poruke prebrzo; ova će biti poslata ponovo.", "Odbaci",
        "Priloži datoteku", "Datoteka nije poslata:",
        "Trenutno nismo dostupni.", "Trenutno nismo dostupni; vraćamo se {when}.",
        "Ostavite adresu e-pošte i odgovorićemo vam e-poštom (i ovde).",
        "Vaša adresa e-pošte"), strict=True)),
    "sr-Cyrl": dict(zip(KEYS, (
        "Отвори чет", "Затвори чет", "Пошаљи поруку", "Пошаљи", "Порука", "Напишите поруку…",
        "Шаље се…", "Послато", "Повезивање…", "Поруке",
        "Нисмо могли да потврдимо ко сте, па чет није доступан.",
        "Шаљете поруке пребрзо; ова ће бити послата поново.", "Одбаци",
        "Приложи датотеку", "Датотека није послата:",
        "Тренутно нисмо доступни.", "Тренутно нисмо доступни; враћамо се {when}.",
        "Оставите адресу е-поште и одговорићемо вам е-поштом (и овде).",
        "Ваша адреса е-поште"), strict=True)),
    "hr": dict(zip(KEYS, (
        "Otvori chat", "Zatvori chat", "Pošalji poruku", "Pošalji", "Poruka",
        "Napišite poruku…", "Šalje se…", "Poslano", "Povezivanje…", "Poruke",
        "Nismo mogli potvrditi tko ste pa chat nije dostupan.",
        "Šaljete poruke prebrzo; ova će se poslati ponovno.", "Odbaci",
        "Priloži datoteku", "Datoteka nije poslana:",
        "Trenutačno nismo dostupni.", "Trenutačno nismo dostupni; vraćamo se {when}.",
        "Ostavite adresu e-pošte i odgovorit ćemo vam e-poštom (i ovdje).",
        "Vaša adresa e-pošte"), strict=True)),
    "sl": dict(zip(KEYS, (
        "Odpri klepet", "Zapri klepet", "Pošlji sporočilo", "Pošlji", "Sporočilo",
        "Napišite sporočilo…", "Pošiljanje…", "Poslano", "Povezovanje…", "Sporočila",
        "Vaše identitete nismo mogli preveriti, zato klepet ni na voljo.",
        "Sporočila pošiljate prehitro; to bo poslano znova.", "Zapri",
        "Priloži datoteko", "Datoteke ni bilo mogoče poslati:",
        "Trenutno nismo na voljo.", "Trenutno nismo na voljo; vrnemo se {when}.",
        "Pustite e-poštni naslov in odgovorili vam bomo po e-pošti (in tukaj).",
        "Vaš e-poštni naslov"), strict=True)),
}


def language_of(tag: str, offered: list[str]) -> str:
    """The site's language for a page's `lang` or a browser's language tag ("sr-Latn-RS",
    "sr" (Cyrillic by default), "hr-HR", "sl", "en-GB"); the site's first one otherwise."""
    parts = tag.replace("_", "-").lower().split("-")
    if parts[0] == "sr":
        wanted = "sr-Latn" if "latn" in parts[1:] else "sr-Cyrl"
    else:
        wanted = {"en": "en", "hr": "hr", "sl": "sl"}.get(parts[0], "")
    return wanted if wanted in offered else offered[0]


def texts_for(language: str, overrides: dict[str, dict[str, str]]) -> dict[str, str]:
    return {**TEXTS["en"], **TEXTS[language], **overrides.get(language, {})}
