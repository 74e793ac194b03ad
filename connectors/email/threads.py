"""Which conversation a mail belongs to, and the state that decides it.

The core keys conversations by (connector, address); for email the address is the customer's
mail address the conversation was started from.  A mail joins, in this order:
1. the conversation of any `In-Reply-To` / `References` id we stored (ours or the customer's):
   In-Reply-To first, then References from the most recent;
2. the conversation of a valid reply token in a recipient address (`support+TOKEN@domain`),
   which our `Reply-To` carries: an HMAC of the address with `reply_token_secret`, so it
   cannot be guessed or forged for another conversation;
3. the sender's own address: the core reuses that address's open conversation, else opens one.
The subject is never used.  A plus part `LINK-…` (any case) is not a reply token but a handoff
code (`handoff_code_in`): it names a customer for the core to link, not a conversation, so
such a mail falls to 1. or 3. like any other.

Kept through the connector's state API (`connector_state` rows):
- `mid:<sha1 of a Message-ID>` -> address, for every mail in and every reply out (the first
  mail with an id keeps it);
- `tok:<token>` -> address, for every token we sent;
- `thread:<address>` -> JSON {subject, parent, references}: what the next reply answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field

from connectors.base import StateAPI
from connectors.email.parse import ParsedMail

TOKEN_LENGTH = 20  # hex digits: 80 bits
MAX_REFERENCES = 20  # ids kept in References (the first one and the most recent)
MAX_LOOKUPS = 50
MAX_ID = 250  # characters: a longer Message-ID (real ones are well under 100) is not echoed


HANDOFF_PREFIX = "link-"  # a handoff code's plus part, lower-cased as `tokens_in` gives it
_TOKEN = re.compile(f"[0-9a-f]{{{TOKEN_LENGTH}}}")


def reply_token(secret: str, address: str) -> str:
    digest = hmac.new(secret.encode(), f"email-conversation:{address.lower()}".encode(),
                      hashlib.sha256)
    return digest.hexdigest()[:TOKEN_LENGTH]


def mid_key(message_id: str) -> str:
    return "mid:" + hashlib.sha1(message_id.encode("utf-8", "replace")).hexdigest()


def tokens_in(recipients: list[str], support_address: str) -> list[str]:
    """The `+detail` of every recipient that is a plus-address of the support address."""
    local, _, domain = support_address.lower().rpartition("@")
    found = []
    for rcpt in recipients:
        r_local, _, r_domain = rcpt.lower().rpartition("@")
        if r_domain == domain and r_local.startswith(local + "+"):
            found.append(r_local[len(local) + 1:])
    return found


def handoff_code_in(recipients: list[str], support_address: str) -> str | None:
    """The first plus part of a support plus-address that is a handoff code (`LINK-…`, any
    case: mail servers may lower-case it; the core normalizes it), or None.  Other plus parts
    are reply tokens or sub-addresses (`support+billing@`) and hand nobody off."""
    for detail in tokens_in(recipients, support_address):
        if detail.startswith(HANDOFF_PREFIX) and len(detail) > len(HANDOFF_PREFIX):
            return detail
    return None


@dataclass
class Thread:
    subject: str = ""
    parent: str | None = None  # the Message-ID the next reply answers
    references: list[str] = field(default_factory=list)

    def followed_by(self, message_id: str, refs: list[str], subject: str = "") -> Thread:
        """The thread after `message_id` (whose own References are `refs`) joined it."""
        usable = len(message_id) <= MAX_ID  # else no header line could hold it
        chain = [r for r in dict.fromkeys([*(refs or self.references), message_id])
                 if len(r) <= MAX_ID]
        if len(chain) > MAX_REFERENCES:
            chain = [chain[0], *chain[-(MAX_REFERENCES - 1):]]
        return Thread(subject=subject or self.subject,
                      parent=message_id if usable else self.parent, references=chain)


class Threads:
    def __init__(self, state: StateAPI, secret: str, support_address: str) -> None:
        self.state = state
        self.secret = secret
        self.support_address = support_address

    async def resolve(self, mail: ParsedMail) -> tuple[str, str]:
        """(the conversation address, how it was found: "header", "token" or "sender")."""
        for ref in mail.references[:MAX_LOOKUPS]:
            address = await self.state.get(mid_key(ref))
            if address:
                return address, "header"
        tokens = [t for t in tokens_in(mail.recipients, self.support_address)
                  if _TOKEN.fullmatch(t)]  # only what we could have made is looked up
        for token in list(dict.fromkeys(tokens))[:MAX_LOOKUPS]:
            address = await self.state.get(f"tok:{token}")
            if address and hmac.compare_digest(reply_token(self.secret, address), token):
                return address, "token"
        return mail.sender, "sender"

    async def token_for(self, address: str) -> str:
        token = reply_token(self.secret, address)
        if await self.state.get(f"tok:{token}") != address:
            await self.state.set(f"tok:{token}", address)
        return token

    async def remember(self, message_id: str, address: str) -> None:
        """Map a Message-ID to its conversation, first come first served: a later mail that
        reuses someone else's Message-ID (a forgery, or a broken client) must not move that
        id, and every reply naming it, into its own conversation."""
        key = mid_key(message_id)
        if await self.state.get(key) is None:
            await self.state.set(key, address)

    async def thread(self, address: str) -> Thread:
        raw = await self.state.get(f"thread:{address}")
        if not raw:
            return Thread()
        data = json.loads(raw)
        return Thread(subject=str(data.get("subject", "")), parent=data.get("parent"),
                      references=[str(r) for r in data.get("references", [])])

    async def save_thread(self, address: str, thread: Thread) -> None:
        await self.state.set(f"thread:{address}", json.dumps(
            {"subject": thread.subject, "parent": thread.parent,
             "references": thread.references}))
