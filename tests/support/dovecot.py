"""A private Dovecot for tests: its own config, port, maildir and processes.

Dovecot is the server most of our users run, and it behaves differently from
pymap in the ways that matter to the watcher: notifications of new mail reach
idling clients after a short delay, a crash closes sockets under the client,
and ``doveadm`` can change UIDVALIDITY the way a restored backup does.

Gotchas this helper encodes (Dovecot 2.3):

* Mail processes may not run as root, and ``first_valid_uid`` defaults to 500,
  so the static userdb uses the ``dovecot`` system user (or ``nobody``) and
  lowers ``first_valid_uid`` to that uid. The maildir is chowned to it.
* pytest's own temporary directories are mode 0700 (root only), which the
  unprivileged mail process cannot traverse; this helper makes its own 0755 one.
* New-mail notification during IDLE comes from inotify on the maildir, with
  ``mailbox_idle_check_interval`` as the fallback; we shorten that to 1 s.
* ``storage="sdbox"`` stores mail in Dovecot's own format instead of maildir. With
  maildir, Dovecot's work per APPEND grew as the folder filled (system time and disk
  writes rose through a flood): on a 2-core machine it took about 175-330 APPENDs a
  second, and about 550 with sdbox.
* Killing only the master with SIGKILL can leave ``imap`` children holding
  client connections open, so :meth:`kill` kills the whole process group,
  which is what a crashed or rebooted server looks like to a client.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from imapclient import IMAPClient

from codered.embedded import free_port
from inbox.ports import ImapAccount

__all__ = ["DOVECOT_BINARY", "DovecotServer"]

DOVECOT_BINARY = Path("/usr/sbin/dovecot")
DOVEADM_BINARY = Path("/usr/bin/doveadm")

_CONFIG = """\
# Written by tests/support/dovecot.py for one test session; safe to delete.
instance_name = codered-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = {mail_location}
mailbox_idle_check_interval = 1 secs
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
imap_idle_notify_interval = 1 mins
protocol imap {{
  # Many mailboxes of one test user (one folder each) from one address.
  mail_max_userip_connections = 200
}}

{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

_MAIL_LOCATIONS = {"maildir": "maildir:~/Maildir", "sdbox": "sdbox:~/sdbox"}
"""Dovecot's ``mail_location`` for each storage a test may ask for."""

# Dovecot 2.3's oauth2 passdb (doc.dovecot.org/2.3, "Open Authentication v2.0 database"):
# the bearer token of XOAUTH2/OAUTHBEARER is POSTed as ``token=...`` to the introspection
# URL (RFC 7662); the JSON answer must say ``active: true`` and name the user.
_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}
"""

_OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


def _mail_owner() -> pwd.struct_passwd:
    for name in ("dovecot", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("no unprivileged system user (dovecot or nobody) to own the test maildir")


class DovecotServer:
    """Start, crash, restart and administer a throwaway Dovecot instance.

    The port and maildir survive :meth:`kill` and :meth:`start`, so a watcher
    pointed at :meth:`account` sees the same mailbox come back after a crash.
    """

    def __init__(
        self,
        *,
        username: str = "support",
        password: str = "s3cret-test",
        oauth2_introspection_url: str | None = None,
        storage: str = "maildir",
    ) -> None:
        """``oauth2_introspection_url`` also enables XOAUTH2 and OAUTHBEARER logins, checked
        by Dovecot's oauth2 passdb against that RFC 7662 endpoint (password logins stay).
        ``storage`` is ``maildir`` (which :meth:`deliver_offline` needs) or ``sdbox``."""
        if storage not in _MAIL_LOCATIONS:
            raise ValueError(f"unknown Dovecot storage {storage!r}: maildir or sdbox")
        if not DOVECOT_BINARY.exists():
            pytest.skip("dovecot binary not found: install Debian package dovecot-imapd")
        if os.geteuid() != 0:
            pytest.skip("the private Dovecot must start as root (it drops to its mail user)")
        self._owner = _mail_owner()
        self.username = username
        self.password = password
        self.oauth2_introspection_url = oauth2_introspection_url
        self.storage = storage
        self.host = "127.0.0.1"
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="codered-dovecot-"))
        self.root.chmod(0o755)  # the mail process runs unprivileged and must traverse it
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        owner = self._owner
        internal = "dovecot" if _user_exists("dovecot") else owner.pw_name
        login = "dovenull" if _user_exists("dovenull") else owner.pw_name
        for sub in ("run", "state"):
            (self.root / sub).mkdir(mode=0o755)
        home = self.root / "home"
        maildir = home / self.username / "Maildir"
        for folder in ("cur", "new", "tmp"):
            (maildir / folder).mkdir(parents=True)
        for path in (home, home / self.username, maildir, *maildir.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        (self.root / "passwd").write_text(f"{self.username}:{{PLAIN}}{self.password}\n")
        mechanisms, oauth2_passdb = "plain login", ""
        if self.oauth2_introspection_url is not None:
            mechanisms = "plain login xoauth2 oauthbearer"
            oauth2_passdb = _OAUTH2_PASSDB.format(root=self.root)
            (self.root / "dovecot-oauth2.conf.ext").write_text(
                _OAUTH2_CONF.format(url=self.oauth2_introspection_url)
            )
        self.config.write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                uid=owner.pw_uid,
                gid=owner.pw_gid,
                internal_user=internal,
                login_user=login,
                mechanisms=mechanisms,
                oauth2_passdb=oauth2_passdb,
                mail_location=_MAIL_LOCATIONS[self.storage],
            )
        )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Run ``dovecot -F`` in its own process group and wait for the IMAP greeting.

        Right after :meth:`kill`, a dying process of the old group may still hold one of
        its sockets, and the new master then refuses to start ("Socket already exists");
        that case is tried again, a few times, a moment later."""
        for attempt in range(5):
            try:
                return self._start_once(timeout)
            except RuntimeError as exc:
                if "Socket already exists" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> Self:
        if self.running:
            return self
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(DOVECOT_BINARY), "-F", "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start:\n{self.log_text()}")
            if self._greets():
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"dovecot did not accept connections in {timeout}s:\n{self.log_text()}")

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """Crash the server: SIGKILL to every Dovecot process, no goodbye to clients."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM, as systemd would), then SIGKILL stragglers."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):  # children may outlive the master
            os.killpg(process.pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    # --- using it ---------------------------------------------------------------------------

    def account(self, name: str = "support", **overrides: Any) -> ImapAccount:
        settings: dict[str, Any] = {
            "name": name,
            "host": self.host,
            "port": self.port,
            "security": "none",
            "username": self.username,
            "password": self.password,
        }
        settings.update(overrides)
        return ImapAccount(**settings)

    def folder_mailboxes(self, folders: list[str]) -> list[dict[str, Any]]:
        """A ``[[mailboxes]]`` entry per folder (created here), each its own address
        ``<folder>@acme.example``, none filing copies in Sent."""
        with IMAPClient(self.host, port=self.port, ssl=False, timeout=10) as client:
            client.login(self.username, self.password)
            for folder in folders:
                client.create_folder(folder)
        return [
            {
                "name": folder.lower(),
                "address": f"{folder.lower()}@acme.example",
                "imap_host": "127.0.0.1",
                "imap_port": self.port,
                "imap_security": "none",
                "imap_username": self.username,
                "imap_password": self.password,
                "folder": folder,
                "file_sent": False,
            }
            for folder in folders
        ]

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message over IMAP APPEND from a separate connection."""
        with IMAPClient(self.host, port=self.port, ssl=False, timeout=10) as client:
            client.login(self.username, self.password)
            client.append(folder, raw)

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        """Run ``doveadm -c <our config> ARGS`` and return its standard output.

        For example ``doveadm("mailbox", "update", "-u", "support", "--uid-validity",
        "42", "INBOX")`` renumbers the folder the way a restored backup would, and
        ``doveadm("save", "-u", "support", stdin=raw)`` delivers mail through
        Dovecot's storage layer (it needs the server's auth socket, so the
        server must be running).
        """
        result = subprocess.run(
            [str(DOVEADM_BINARY), "-c", str(self.config), *args],
            input=stdin,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"doveadm {' '.join(args)} failed ({result.returncode}): {error}")
        return result.stdout.decode(errors="replace")

    def deliver_offline(self, raw: bytes) -> None:
        """Drop a message into the INBOX maildir directly, as a local MDA would
        (write to ``tmp/``, rename into ``new/``); works while Dovecot is down."""
        if self.storage != "maildir":
            raise RuntimeError(f"only a maildir can be delivered to offline, not {self.storage}")
        owner = self._owner
        maildir = self.root / "home" / self.username / "Maildir"
        name = f"{time.time_ns()}.P{os.getpid()}Q{uuid.uuid4().hex[:8]}.codered-test"
        staged = maildir / "tmp" / name
        staged.write_bytes(raw)
        os.chown(staged, owner.pw_uid, owner.pw_gid)
        staged.rename(maildir / "new" / name)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
