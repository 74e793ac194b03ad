"""A real IMAP server for the email tests: Dovecot, on loopback.

Dovecot comes from Debian's `dovecot-imapd` (scripts/ensure-dovecot.sh installs it and the
`bridgemail` system user the mailboxes belong to).  A `DovecotServer` runs its own master
process with a config of its own in a fresh directory, on free ports (IMAP with STARTTLS, and
implicit TLS when given a certificate); nothing system-wide is used.  Its login process refuses
to run as root, hence `default_login_user = dovenull`.

The tests share one server per session (tests/fixtures_email.py) and each gets a `Dovecot`: a
mail user of its own on it (`t1@example.com`, `t2@...`: a login and a maildir), so no test sees
another's mail.  A test that restarts the server gets a private one.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aioimaplib

from connectors.email.imap import mailbox_arg
from tests.helpers_proc import free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
MAIL_USER = "bridgemail"
USER = "support@example.com"  # the support address the bridge writes from
PASSWORD = "imap-test-password"  # every mail user's
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
  driver = static
  args = password={password}
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


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # nobody left


class DovecotServer:
    """One private Dovecot on 127.0.0.1:`port` (and `tls_port` with `tls`); mail users are
    made while it runs (`mailbox()`): any user logs in with `PASSWORD` (a static passdb), and
    gets a maildir of its own on first use."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        """`tls` (cert, key): STARTTLS on `port` and implicit TLS on `tls_port`."""
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
        self.users = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def _configure(self) -> None:
        self.port = free_port()
        self.tls_port = free_port() if self.tls else 0
        mail = self.root / "mail"
        mail.mkdir()
        os.chown(mail, self.owner.pw_uid, self.owner.pw_gid)
        conf = CONFIG.format(root=self.root, port=self.port, tls_port=self.tls_port,
                             ssl="yes" if self.tls else "no", password=PASSWORD,
                             uid=self.owner.pw_uid, gid=self.owner.pw_gid)
        if self.tls:
            conf += TLS_CONFIG.format(cert=self.tls[0], key=self.tls[1])
        self.conf.write_text(conf)

    def _spawn(self) -> subprocess.Popen[bytes]:
        assert self.proc is None, "already running"
        if not self.port:
            self._configure()
        # A process group of its own: its processes outlive the master (see `_terminate`).
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def _listening(self, proc: subprocess.Popen[bytes]) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited: {self.log()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def start_now(self) -> None:
        """Start and wait (blocking) until it answers: for a session fixture."""
        proc = self._spawn()
        deadline = time.monotonic() + 10
        while not self._listening(proc):
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")
            time.sleep(0.02)

    async def start(self) -> None:
        """Start (or restart, on the same ports) and wait until it answers."""
        proc = self._spawn()
        deadline = asyncio.get_running_loop().time() + 10
        while not self._listening(proc):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")
            await asyncio.sleep(0.02)

    def _terminate(self) -> subprocess.Popen[bytes] | None:
        """Stop the master and every process it started. Here the master's SIGTERM leaves the
        `imap` processes (and `log`, `stats`) running, still serving their clients: a restart
        would drop no connection, and each stop would leak processes. So the whole process
        group goes, as a server restart or a crash would take it."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _signal_group(proc.pid, signal.SIGTERM)
        return proc

    def stop_now(self) -> None:
        proc = self._terminate()
        if proc is not None:
            try:
                proc.wait(10)
            finally:
                _signal_group(proc.pid, signal.SIGKILL)  # whatever did not go

    async def stop(self) -> None:
        proc = self._terminate()
        if proc is None:
            return
        deadline = asyncio.get_running_loop().time() + 10
        try:
            while proc.poll() is None:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"dovecot {proc.pid} still running 10 s after SIGTERM")
                await asyncio.sleep(0.02)
        finally:
            _signal_group(proc.pid, signal.SIGKILL)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def mailbox(self) -> Dovecot:
        """A new mail user with an empty INBOX, for one test."""
        self.users += 1
        user = f"t{self.users}@example.com"  # the maildir is named after the local part
        return Dovecot(self, user)


class Dovecot:
    """A test's mail user on a `DovecotServer`: what the tests use to deliver and inspect
    mail (the bridge logs in as `user` with `PASSWORD`)."""

    def __init__(self, server: DovecotServer, user: str) -> None:
        self.server = server
        self.user = user

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int:
        return self.server.tls_port

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def kick(self) -> None:
        """Drop this user's IMAP connections, as a server restart or a network cut would."""
        proc = await asyncio.create_subprocess_exec(
            DOVEADM, "-c", str(self.server.conf), "kick", self.user,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode not in (0, 68):  # 68: nobody was connected
            raise RuntimeError(f"doveadm kick failed: {err.decode(errors='replace')}")

    async def client(self) -> aioimaplib.IMAP4:
        imap = aioimaplib.IMAP4(host="127.0.0.1", port=self.port, timeout=10)
        await imap.wait_hello_from_server()
        await imap.login(self.user, PASSWORD)
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



@contextmanager
def serving(tls: tuple[Path, Path] | None = None) -> Iterator[DovecotServer]:
    """A started private Dovecot, stopped and removed on the way out."""
    server = DovecotServer(tls=tls)
    try:
        server.start_now()
        yield server
    finally:
        server.stop_now()
        server.close()
