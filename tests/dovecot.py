"""A real IMAP server for the email tests: Dovecot, on loopback.

Dovecot comes from Debian's `dovecot-imapd` (scripts/ensure-dovecot.sh installs it and the
`bridgemail` system user the mailboxes belong to).  Each `Dovecot` runs its own master process
with a config of its own in a fresh directory, on a free port; nothing system-wide is used.
Its login process refuses to run as root, hence `default_login_user = dovenull`.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aioimaplib

from connectors.email.imap import mailbox_arg
from tests.helpers_proc import free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
MAIL_USER = "bridgemail"
USER = "support@example.com"
PASSWORD = "imap-test-password"
INSTALL = "run scripts/ensure-dovecot.sh (as root) first"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = bridge-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:{root}/mail/%n
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
imap_idle_notify_interval = 1 secs
mailbox_idle_check_interval = 1 secs
"""
TLS_CONFIG = """\
ssl_cert = <{cert}
ssl_key = <{key}
"""


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA): (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return cert, key


class Dovecot:
    """One private Dovecot on 127.0.0.1:`port` with one mailbox user (`USER`/`PASSWORD`)."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        """`tls` (cert, key): also serve implicit TLS on `tls_port`."""
        self.tls = tls
        self.tls_port = 0
        if os.geteuid() != 0:
            raise RuntimeError(f"the email tests start Dovecot as root ({INSTALL})")
        if not (os.access(DOVECOT, os.X_OK) and shutil.which("doveadm")):
            raise RuntimeError(f"Dovecot is not installed: {INSTALL}")
        try:
            self.owner = pwd.getpwnam(MAIL_USER)
        except KeyError:
            raise RuntimeError(f"no system user {MAIL_USER}: {INSTALL}") from None
        self.root = Path(tempfile.mkdtemp(prefix="bridge-dovecot-"))
        self.root.chmod(0o755)  # the mail user and dovenull walk through it
        self.port = 0
        self.conf = self.root / "dovecot.conf"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers."""
        if not self.port:
            self.port = free_port()
            self.tls_port = free_port() if self.tls else 0
            (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
            mail = self.root / "mail"
            mail.mkdir()
            os.chown(mail, self.owner.pw_uid, self.owner.pw_gid)
            conf = CONFIG.format(root=self.root, port=self.port, tls_port=self.tls_port,
                                 ssl="yes" if self.tls else "no",
                                 uid=self.owner.pw_uid, gid=self.owner.pw_gid)
            if self.tls:
                conf += TLS_CONFIG.format(cert=self.tls[0], key=self.tls[1])
            self.conf.write_text(conf)
        self.proc = await asyncio.create_subprocess_exec(
            DOVECOT, "-F", "-c", str(self.conf), stdin=asyncio.subprocess.DEVNULL)
        for _ in range(200):
            if self.proc.returncode is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    async def kick(self) -> None:
        """Drop every IMAP connection, as a server restart or a network cut would."""
        proc = await asyncio.create_subprocess_exec(
            DOVEADM, "-c", str(self.conf), "kick", USER,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode not in (0, 68):  # 68: nobody was connected
            raise RuntimeError(f"doveadm kick failed: {err.decode(errors='replace')}")

    async def client(self) -> aioimaplib.IMAP4:
        imap = aioimaplib.IMAP4(host="127.0.0.1", port=self.port, timeout=10)
        await imap.wait_hello_from_server()
        await imap.login(USER, PASSWORD)
        return imap

    async def append(self, *raws: bytes, mailbox: str = "INBOX") -> None:
        """Deliver mail by IMAP APPEND, as a mail server would."""
        imap = await self.client()
        try:
            for raw in raws:
                response = await imap.append(raw, mailbox=mailbox_arg(mailbox))
                assert response.result == "OK", response
        finally:
            await imap.logout()

    async def recreate(self, mailbox: str) -> None:
        """Delete (if there) and create a mailbox: it gets a new UIDVALIDITY."""
        imap = await self.client()
        try:
            await imap.delete(mailbox_arg(mailbox))
            response = await imap.create(mailbox_arg(mailbox))
            assert response.result == "OK", response
        finally:
            await imap.logout()

    async def flags(self, mailbox: str = "INBOX") -> list[str]:
        """Each message's FLAGS line, in UID order."""
        imap = await self.client()
        try:
            response = await imap.select(mailbox_arg(mailbox))
            assert response.result == "OK", response
            response = await imap.uid("fetch", "1:*", "(FLAGS)")
            return [line.decode() for line in response.lines if b"FETCH" in line]
        finally:
            await imap.logout()


@asynccontextmanager
async def running(tls: tuple[Path, Path] | None = None) -> AsyncIterator[Dovecot]:
    """A started private Dovecot, stopped and removed on the way out."""
    server = Dovecot(tls=tls)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        server.close()
