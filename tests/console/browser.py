"""The browser tests' machinery: a real ``crm serve`` in a subprocess on a free loopback port
against its own database (SQLite, or a fresh PostgreSQL database on the server of
``CRM_TEST_DATABASE_URL``), Debian's Chromium driven by Playwright, sign-in, screenshots, axe."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from crmcore.db.engine import create_crm_engine
from crmcore.testing import TEST_URL_ENV, is_postgres

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
#: how long an ``expect`` waits: a shared CI machine under load answers a POST in seconds, not ms
EXPECT_TIMEOUT_MS = 20_000
PASSWORD = "correct horse battery"
CRM = str(Path(sys.executable).with_name("crm"))
CONFIG = """
[visibility]
sales = "own"

[console]
lockout_after = 3
lockout_seconds = 60
argon2_time_cost = 1
argon2_memory_kib = 8192
argon2_parallelism = 1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database(tmp: Path) -> Iterator[str]:
    """A brand-new database for the server: a SQLite file, or a PostgreSQL database dropped after."""
    if not is_postgres():
        yield f"sqlite:///{tmp / 'crm.db'}"
        return
    base = make_url(os.environ[TEST_URL_ENV]).set(drivername="postgresql+psycopg")
    name = f"crm_b_{uuid.uuid4().hex[:12]}"
    admin = create_crm_engine(base.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Server:
    """``crm serve`` running on ``url``; ``crm(...)`` runs a command on the same database."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp, self.db_url = tmp, db_url
        self.env = {k: v for k, v in os.environ.items() if k not in ("CRM_DATABASE_URL", "CRM_USER", TEST_URL_ENV)}
        self.env.update(CRM_DATABASE_URL=db_url, PYTHONIOENCODING="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/console"
        self.proc: subprocess.Popen[bytes] | None = None

    def crm(self, *args: str, user: str = "boss", input: str | None = None, check: bool = True) -> str:
        res = subprocess.run([CRM, "--user", user, *args], cwd=self.tmp, env=self.env, input=input,
                             capture_output=True, text=True, timeout=120, check=False)
        if check:
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res.stdout + res.stderr

    def set_up(self) -> None:
        (self.tmp / "crm.toml").write_text(CONFIG)
        self.crm("init")
        self.crm("user", "add", "boss", "--name", "Bea Boss", "--role", "admin")
        for name, display, role in (("anna", "Anna Berg", "sales"), ("sam", "Sam Stone", "sales"),
                                    ("carl", "Carl Credit", "credit_controller"), ("lou", "Lou Locked", "sales"),
                                    ("mia", "Mia Manager", "manager")):
            self.crm("user", "add", name, "--name", display, "--role", role)
        for name in ("boss", "anna", "sam", "carl", "lou", "mia"):
            self.crm("user", "password", name, input=PASSWORD + "\n")
        self.crm("plugins", "enable", "credit")

    def start(self) -> None:
        log = (self.tmp / "serve.log").open("wb")
        self.proc = subprocess.Popen([CRM, "--user", "boss", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--deliver-every", "0"], cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("crm serve exited: " + (self.tmp / "serve.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("crm serve did not start in 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def sign_in(page: Any, server: Server, user: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/signin")
    page.fill("#f-username", user)
    page.fill("#f-password", password)
    page.press("#f-password", "Enter")  # the keyboard, as a person would
    page.wait_for_load_state()


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG for the README and docs (docs/screenshots/NAME.png).

    The viewport is stretched to the page's height and put back, rather than Playwright's
    ``full_page``: with the distribution's Chromium, clicks after a ``full_page`` shot were lost."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size
    if size is None:
        page.screenshot(path=str(path), full_page=True)
        return path
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    try:
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core (from the axe-playwright-python package) run in the page: serious and critical
    violations of WCAG 2.x A/AA rules. Evaluated through the DevTools protocol, so the page's
    CSP (no inline scripts) stays on."""
    import axe_playwright_python

    source = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
    page.evaluate(source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def switch_language(page: Any, lang: str) -> None:
    """Choose the language in the header's switcher and wait for the page it submits (console.js
    submits on change): a goto before that page cancels the submit and the choice is lost. The
    language already chosen fires no change, so there is nothing to wait for."""
    if page.locator("#lang-select").input_value() == lang:
        return
    with page.expect_navigation():
        page.select_option("#lang-select", lang)


#: two or more Latin words in a row: a sentence or a label left in English
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ -][A-Za-z][a-z]+)+\b")


def english_left(page: Any, data: tuple[str, ...] = ()) -> list[str]:
    """Runs of English words in the page's ``main`` (and its header), once the customer data
    the page is known to show (``data``: names, subjects, reasons typed in English) and code
    (commands, segment rules) are taken out: a page in Chinese or Russian shows none."""
    text = page.evaluate("""() => [...document.querySelectorAll('header, main')].map(part => {
        const copy = part.cloneNode(true);  // commands and segment rules are code, not English
        copy.querySelectorAll('code, kbd, pre, samp, textarea, script').forEach(c => c.remove());
        document.body.appendChild(copy);
        const text = copy.innerText;
        copy.remove();
        return text;
    }).join('\\n')""")
    for d in sorted(data, key=len, reverse=True):
        text = text.replace(d, " ")
    return sorted(set(ENGLISH_RUN.findall(text)))


def codes_left(page: Any) -> list[str]:
    """Codes (a role, an audit entry's action or entity) shown as stored: the admin pages show a
    code in words and keep the code in the element's ``title``; an element whose text is still
    its title shows the code itself (no catalogue names it in the reader's language)."""
    return sorted(set(page.evaluate("""() => [...document.querySelectorAll('main [title]')]
        .filter(e => e.innerText.trim() === e.getAttribute('title') && /^[a-z][a-z0-9_.-]*$/.test(e.getAttribute('title')))
        .map(e => e.getAttribute('title'))""")))
