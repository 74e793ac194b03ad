"""Twilio's inbound form -> `InboundMessage`: a pure function, tested on recorded payloads."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from connectors.base import Malformed
from vocab.models import Attachment, DeliveryState, InboundMessage

NAME = "twilio"
MAX_MEDIA = 10


def parse_form(body: bytes) -> dict[str, str]:
    """Decode a form body strictly; raise `Malformed` (400) on anything else."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"not a form body: {exc}") from exc
    return {name: values[-1] for name, values in pairs.items()}


def is_whatsapp(address: str) -> bool:
    return address.startswith("whatsapp:")


def _attachments(form: Mapping[str, str]) -> tuple[Attachment, ...]:
    try:
        count = min(int(form.get("NumMedia", "0") or 0), MAX_MEDIA)
    except ValueError as exc:
        raise Malformed("NumMedia is not a number") from exc
    found = []
    for n in range(count):
        url = form.get(f"MediaUrl{n}")
        if not url:
            continue
        mime = form.get(f"MediaContentType{n}") or "application/octet-stream"
        kind = "photo" if mime.startswith("image/") else mime.split("/", 1)[0] or "document"
        found.append(Attachment(kind=kind if kind in ("photo", "video", "audio") else "document",
                                url=url, mime_type=mime, platform_file_id=url.rsplit("/", 1)[-1]))
    return tuple(found)


# Twilio's default opt-out and opt-in keywords (the whole message, any case).  Twilio blocks
# further SMS to a number that sent one of the first until it sends one of the second.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                           "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})


def opt_out(form: Mapping[str, str]) -> bool | None:
    """True for an opt-out keyword, False for an opt-in one, None otherwise.  Twilio's
    Advanced Opt-Out names it in `OptOutType`; else the body alone is the keyword."""
    kind = (form.get("OptOutType") or "").upper()
    if kind in ("STOP", "START"):
        return kind == "STOP"
    word = form.get("Body", "").strip().rstrip(".!").upper()
    if word in OPT_OUT_WORDS:
        return True
    if word in OPT_IN_WORDS:
        return False
    return None


def parse_message(form: Mapping[str, str]) -> list[InboundMessage]:
    """One inbound SMS/MMS/WhatsApp message; raise `Malformed` without From, To, MessageSid."""
    missing = [k for k in ("From", "To", "MessageSid") if not form.get(k)]
    if missing:
        raise Malformed(f"missing {', '.join(missing)}")
    sender = form["From"]
    whatsapp = is_whatsapp(sender)
    number = sender.removeprefix("whatsapp:")
    name = (form.get("ProfileName") or "").strip() if whatsapp else ""
    attachments = _attachments(form)
    body = form.get("Body", "")
    if not body and not attachments:
        body = "[location]" if form.get("Latitude") else "[empty message]"
    if form.get("ButtonText") and not form.get("Body"):
        body = form["ButtonText"]
    return [InboundMessage(
        connector=NAME,
        platform_message_id=form["MessageSid"],
        address=sender,  # replies go back on the same channel (SMS or WhatsApp)
        sender_name=name or number,
        username=None,
        text=body,
        attachments=attachments,
        platform_ref=form["MessageSid"],
        opt_out=opt_out(form),
        channel="whatsapp" if whatsapp else "sms",
        # Twilio's carrier or WhatsApp delivered it from this number: the sender owns it.
        verified_phone=number or None,
        inbox=form["To"],  # the number (or whatsapp:number) the customer wrote to
    )]


STATUSES = {"sent": DeliveryState.SENT, "delivered": DeliveryState.DELIVERED,
            "read": DeliveryState.READ, "failed": DeliveryState.FAILED,
            "undelivered": DeliveryState.FAILED, "canceled": DeliveryState.FAILED}


def parse_status(form: Mapping[str, str]) -> tuple[str, DeliveryState, str | None] | None:
    """A status callback: (MessageSid, state, error) or None for states that change nothing
    (queued, accepted, sending...).  Raise `Malformed` without MessageSid or MessageStatus."""
    sid, status = form.get("MessageSid"), form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        raise Malformed("a status callback needs MessageSid and MessageStatus")
    state = STATUSES.get(status)
    if state is None:
        return None
    error = None
    if state is DeliveryState.FAILED:
        code = form.get("ErrorCode")
        error = f"Twilio {status}" + (f", error {code}" if code else "")
        if code and code.isdigit() and int(code) in ERRORS:
            error += f": {ERRORS[int(code)]}"
    return sid, state, error


# What Twilio's error codes mean for the agent (sends and status callbacks).
ERRORS = {21211: "the number is not a valid phone number",
          21610: "the customer has opted out (replied STOP)",
          21614: "the number cannot receive SMS",
          63016: "outside WhatsApp's 24-hour window: only an approved template can be sent",
          63024: "the recipient is not a valid WhatsApp user",
          30003: "the handset is unreachable",
          30005: "unknown destination handset",
          30006: "landline or unreachable carrier",
          30007: "filtered by the carrier as spam",
          21408: "this region is not enabled for the account",
          20003: "Twilio refused the credentials (account_sid / auth_token)"}
