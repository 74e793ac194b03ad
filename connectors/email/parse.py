"""Raw RFC 5322 bytes -> what the bridge needs to know about a mail (pure, never raises).

Parsed with `email.policy.default`.  Wrong or missing charsets, broken MIME and odd headers are
decoded as well as can be rather than crash: a mail that cannot be read still reaches the
agents, with what could be read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.policy import Policy
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from connectors.email.text import html_to_text, strip_reply

NAME = "email"
_ID = re.compile(r"<([^<>\s]+)>")
_LOOSE_CHARSETS = frozenset({None, "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1",
                             "iso8859-1", "windows-1252", "cp1252"})
NOISE_SENDERS = ("mailer-daemon", "postmaster")


@dataclass(frozen=True)
class MailFile:
    index: int  # position among `attachment_parts`, what `fetch_file` finds it by
    filename: str
    mime_type: str
    size: int


@dataclass
class ParsedMail:
    message_id: str  # without <>, or a content hash when the mail has none
    sender: str  # lowercased address
    sender_name: str
    subject: str
    text: str  # what Slack shows: quotes and signature cut off
    full_text: str
    references: list[str] = field(default_factory=list)  # In-Reply-To, then References newest
    thread_refs: list[str] = field(default_factory=list)  # References as sent (oldest first)
    recipients: list[str] = field(default_factory=list)  # To, Cc, Delivered-To, X-Original-To
    files: list[MailFile] = field(default_factory=list)
    date: float | None = None
    noise: str | None = None  # why it is not a customer's mail (auto-reply, list...), or None
    bounced: list[str] = field(default_factory=list)  # our Message-IDs a DSN says failed
    bounce_reason: str = ""

    @property
    def trimmed(self) -> bool:
        return self.text.strip() != self.full_text.strip()


def message_ids(value: str | None) -> list[str]:
    """The `<id>`s in a Message-ID, In-Reply-To or References value, without brackets."""
    return _ID.findall(value or "")


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header policy.default cannot parse
        return ""
    text = "" if value is None else str(value)
    if "\ufffd" in text:  # raw 8-bit bytes in the header: decode them as a body would be
        text = next((_raw_header(v) for k, v in msg.raw_items() if k.lower() == name.lower()),
                    text)
    if "=?" in text:  # still RFC 2047-encoded (the compat32 fallback)
        try:
            text = str(make_header(decode_header(text)))
        except Exception:
            pass
    return text


def _raw_header(value: str) -> str:
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # already text
        return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def decode_part(part: Message) -> str:
    """A text part's content: the declared charset, else UTF-8, else windows-1252.

    Labels that are often wrong (missing, us-ascii, iso-8859-1) try strict UTF-8 first, as
    valid UTF-8 beyond ASCII is rarely an accident; iso-8859-1 is read as windows-1252."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        body = part.get_payload()
        return body if isinstance(body, str) else ""
    try:
        declared = part.get_content_charset()
    except Exception:
        declared = None
    candidates = ["utf-8", "cp1252"] if declared in _LOOSE_CHARSETS else [
        declared or "utf-8", "utf-8", "cp1252"]
    for charset in candidates:
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("cp1252", errors="replace")


def leaf_parts(msg: Message) -> Iterator[Message]:
    """Every non-multipart part, depth first; an attached message is one leaf."""
    if msg.get_content_maintype() == "multipart":
        payload = msg.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    yield from leaf_parts(sub)
            return
    yield msg


def _is_body_candidate(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return (part.get_content_type() in ("text/plain", "text/html")
            and disposition != "attachment" and not part.get_filename())


def attachment_parts(msg: Message) -> list[Message]:
    """The parts shown as files: everything but the text bodies (inline images included)."""
    found = []
    for part in leaf_parts(msg):
        try:
            if part is msg and msg.get_content_maintype() == "text":
                continue
            if _is_body_candidate(part):
                continue
        except Exception:
            continue
        found.append(part)
    return found


def part_bytes(part: Message) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=policy.SMTP)
        if isinstance(inner, str):
            return inner.encode("utf-8", "replace")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename()  # RFC 2231 and RFC 2047 names decoded
    except Exception:
        name = None
    name = re.sub(r"[\x00-\x1f/\\]", "_", str(name or "")).strip(" .")[-150:]
    if name:
        return name
    if part.get_content_type() == "message/rfc822":
        return f"attached-{index + 1}.eml"
    subtype = re.sub(r"[^a-z0-9]", "", part.get_content_subtype().lower())[:10] or "bin"
    return f"attachment-{index + 1}.{subtype}"


def _body(msg: Message) -> tuple[str, str]:
    """(full text, text without quotes and signature)."""
    part: Message | None = None
    if isinstance(msg, EmailMessage):
        try:
            part = msg.get_body(preferencelist=("plain", "html"))
        except Exception:
            part = None
    content = decode_part(part) if part is not None else ""
    if not content.strip():  # none, or an empty one (broken MIME): the first non-empty text
        found = [(p, decode_part(p)) for p in leaf_parts(msg) if _is_body_candidate(p)]
        found = [(p, text) for p, text in found if text.strip()]
        found.sort(key=lambda pair: pair[0].get_content_type() != "text/plain")
        if not found:
            return "", ""
        part, content = found[0]
    if part is not None and part.get_content_type() == "text/html":
        return html_to_text(content), strip_reply(html_to_text(content, drop_quotes=True))
    content = content.replace("\r\n", "\n").strip()
    return content, strip_reply(content)


def _noise(msg: Message, sender: str) -> str | None:
    auto = _header(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond"):
        if msg.get(name) is not None:
            return name
    if "<>" in _header(msg, "Return-Path").replace(" ", ""):
        return "Return-Path: <>"
    if sender.split("@")[0] in NOISE_SENDERS:
        return f"sent by {sender}"
    return None


_FAILURE_SUBJECT = re.compile(r"undeliver|failure|returned mail|not delivered|delivery status"
                              r"|delivery failed|rejected", re.IGNORECASE)


def _plain_bounce(msg: Message, raw: bytes, sender: str, own_domain: str) -> list[str]:
    """A bounce without a delivery status report (qmail's "failure notice" and the like):
    from a mailer daemon, a failure subject, and our Message-IDs quoted in its text."""
    if not own_domain or not (sender.split("@")[0] in NOISE_SENDERS
                              or "<>" in _header(msg, "Return-Path").replace(" ", "")):
        return []
    if not _FAILURE_SUBJECT.search(_header(msg, "Subject")):
        return []
    pattern = rb"<([^<>\s]+@" + re.escape(own_domain.encode()) + rb")>"
    found = [m.decode("ascii", "replace") for m in re.findall(pattern, raw, re.IGNORECASE)]
    return list(dict.fromkeys(found))


def _bounce(msg: Message) -> tuple[list[str], str]:
    """A delivery status notification's failed original Message-IDs and the reason."""
    if msg.get_content_type() != "multipart/report":
        return [], ""
    ids: list[str] = []
    failed, reason = False, ""
    for part in leaf_parts(msg):
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            status = part_bytes(part).decode("utf-8", "replace")
            payload = part.get_payload()
            if isinstance(payload, list):  # the per-recipient blocks, parsed as headers
                status = "\n".join(str(b) for b in payload if isinstance(b, Message))
            failed = failed or bool(re.search(r"^Action:\s*failed", status, re.I | re.M))
            code = re.search(r"^Diagnostic-Code:\s*(?:[\w-]+;)?\s*(.+)$", status, re.I | re.M)
            stat = re.search(r"^Status:\s*([245]\.\d+\.\d+)", status, re.I | re.M)
            reason = (code.group(1).strip() if code else "") or (
                f"status {stat.group(1)}" if stat else "")
        elif ctype in ("message/rfc822", "text/rfc822-headers"):
            inner = message_from_bytes(part_bytes(part), policy=policy.default)
            ids.extend(message_ids(_header(inner, "Message-ID")))
    return (ids, reason or "the recipient's mail server refused it") if failed else ([], "")


def unreadable(raw: bytes) -> ParsedMail:
    """What a mail no parser could read still shows (the original is attached)."""
    return ParsedMail(message_id="sha256:" + hashlib.sha256(raw).hexdigest(),
                      sender="unknown@invalid", sender_name="(unreadable mail)", subject="",
                      text="(This mail could not be read: see the attached original.)",
                      full_text="")


def parse_mail(raw: bytes, own_address: str = "") -> ParsedMail:
    """`email.policy.default` first; Python's lenient `compat32` when that fails (it raises
    on some broken headers); else a placeholder that keeps the mail's bytes."""
    for parse_policy in (policy.default, policy.compat32):
        try:
            return _parse(raw, own_address, parse_policy)
        except Exception:
            continue
    return unreadable(raw)


def _parse(raw: bytes, own_address: str, parse_policy: Policy) -> ParsedMail:
    msg = message_from_bytes(raw, policy=parse_policy)
    name, sender = parseaddr(_header(msg, "From"))
    if not sender:
        name, sender = parseaddr(_header(msg, "Sender"))
    sender = sender.strip().lower()
    own = own_address.lower()
    ids = message_ids(_header(msg, "Message-ID"))
    message_id = ids[0] if ids else "sha256:" + hashlib.sha256(raw).hexdigest()
    # In-Reply-To first, then References from the most recent: the order threading tries them.
    refs = message_ids(_header(msg, "In-Reply-To")) + message_ids(_header(msg, "References"))[::-1]
    recipients = [addr.lower() for _, addr in getaddresses(
        [_header(msg, h) for h in ("To", "Cc", "Delivered-To", "X-Original-To")]) if addr]
    full, text = _body(msg)
    files = []
    for index, part in enumerate(attachment_parts(msg)):
        files.append(MailFile(index, _filename(part, index), part.get_content_type(),
                              len(part_bytes(part))))
    date = None
    try:
        date = parsedate_to_datetime(_header(msg, "Date")).timestamp()
    except Exception:
        pass
    bounced, reason = _bounce(msg)
    if not bounced and msg.get_content_type() != "multipart/report":
        bounced = _plain_bounce(msg, raw, sender, own_address.lower().rpartition("@")[2])
        reason = "the recipient's mail server refused it" if bounced else ""
    noise = _noise(msg, sender)
    own_local, _, own_domain = own.rpartition("@")
    if own and (sender == own or (sender.endswith(f"@{own_domain}")
                                  and sender.startswith(f"{own_local}+"))):
        noise = "sent from the support address itself"
    if not bounced and noise is None and not sender:
        noise = "no sender address"
    return ParsedMail(
        message_id=message_id, sender=sender, sender_name=name.strip() or sender,
        subject=" ".join(_header(msg, "Subject").split()), text=text, full_text=full,
        references=list(dict.fromkeys(refs)), thread_refs=message_ids(_header(msg, "References")),
        recipients=list(dict.fromkeys(recipients)),
        files=files, date=date, noise=noise if not bounced else "bounce", bounced=bounced,
        bounce_reason=reason)


def find_part(raw: bytes, index: int) -> bytes | None:
    """The bytes of the `index`th file of a mail (as listed by `parse_mail`)."""
    msg = message_from_bytes(raw, policy=policy.default)
    parts = attachment_parts(msg)
    return part_bytes(parts[index]) if 0 <= index < len(parts) else None
