"""Webhook targets: non-public hosts, empty hosts and control characters are refused when a
subscription is added (one line, exit 1, nothing written) unless ``[webhooks] allow_hosts`` names
them, and again at each delivery after DNS resolution, connecting to the address that was checked."""
from __future__ import annotations

import ipaddress
import socket
import threading
import unicodedata
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.errors import InvalidInput
from crmcore.models import AuditEntry, WebhookDelivery, WebhookSubscription
from crmcore.schemas import CustomerCreate
from crmcore.webhooks import subscriptions
from crmcore.webhooks.delivery import deliver
from crmcore.webhooks.targets import Target, check_url, pin, policy

ALLOW = ["127.0.0.1", "hooks.internal", "10.20.0.0/16"]
HOSTILE = [
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hook", "http://172.16.0.1/", "http://172.31.255.254/x",
    "http://192.168.1.10/", "http://127.0.0.1:8080/", "http://127.9.9.9/", "http://[::1]/", "http://169.254.1.1/",
    "http://[fe80::1]/", "http://[fd12:3456::1]/", "http://[fc00::1]/", "http://[::ffff:169.254.169.254]/", "http://0.0.0.0/",
    "http://", "https://", "http:///path", "http://x\r\nHost: evil", "http://x/\x00", "http://x/\x1b[31m", "http://exa mple.com/",
    "http://localhost:9000/", "http://LOCALHOST./", "http://api.localhost/", "http://2130706433/", "http://0x7f.0.0.1/", "http://127.1/",
    "http://a:b@example.com/", "http://example.com@169.254.169.254/", "http://example.com\\@127.0.0.1/", "ftp://example.com/",
    "file:///etc/passwd", "gopher://example.com/", "example.com", "http://example.com:99999/", "http://-bad-.example/",
    "http://" + "a" * 64 + ".example/", "https://example.com/" + "x" * 2000, "http://example.com:0/", "http://example.com:x/",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "http://LocalHost\uff0e/",
]


@pytest.fixture
def toml(tmp_path: Any) -> Callable[[str], None]:
    """Write crm.toml where the ``cli`` fixture runs."""
    def write(text: str) -> None:
        (tmp_path / "crm.toml").write_text(text, encoding="utf-8")
    return write


def stored(crm: CRM) -> tuple[int, int]:
    with crm.unit_of_work("check", read_only=True) as uow:
        subs = uow.session.scalar(select(func.count()).select_from(WebhookSubscription)) or 0
        audit = uow.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "webhook_subscription"))
        return subs, audit or 0


@pytest.mark.parametrize("url", HOSTILE, ids=[repr(u)[:40] for u in HOSTILE])
def test_a_hostile_url_is_refused_in_one_line(cli: Callable[..., Any], crm: CRM, url: str) -> None:
    r = cli("webhooks", "add", url, "--event", "customer.created")
    assert r.exit_code == 1 and "invalid webhook URL" in r.output and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "\r" not in r.output and "\x1b" not in r.output
    assert stored(crm) == (0, 0)


def test_public_and_allow_listed_targets_are_accepted(cli: Callable[..., Any], crm: CRM, toml: Callable[[str], None]) -> None:
    for url in ("https://erp.example.com/hooks", "http://8.8.8.8/x", "https://b\u00fccher.example/h", "http://[2001:4860::8888]/"):
        assert cli("webhooks", "add", url, "--event", "*").exit_code == 0
    assert cli("webhooks", "add", "http://127.0.0.1:8080/h", "--event", "*").exit_code == 1
    toml('[webhooks]\nallow_hosts = ["127.0.0.1", "Hooks.Internal", "10.20.0.0/16"]\n')
    for url in ("http://127.0.0.1:8080/h", "http://hooks.internal/h", "https://HOOKS.internal./h", "http://10.20.3.4/h"):
        assert cli("webhooks", "add", url, "--event", "*").exit_code == 0, url
    for url in ("http://10.21.0.1/h", "http://169.254.169.254/", "http://[::1]/", "http://other.internal.localhost/"):
        r = cli("webhooks", "add", url, "--event", "*")
        assert r.exit_code == 1 and "allow_hosts" in r.output, (url, r.output)
    assert stored(crm) == (8, 8)


@pytest.mark.parametrize("table,message", [('allow_hosts = ["not a host!"]', "neither a host name"),
                                           ('allow_hosts = "127.0.0.1"', "allow_hosts"), ("allow = []", "allow"),
                                           ("allow_hosts = [1]", "allow_hosts")])
def test_a_bad_allow_list_is_one_line(cli: Callable[..., Any], toml: Callable[[str], None], table: str, message: str) -> None:
    toml(f"[webhooks]\n{table}\n")
    for args in (("webhooks", "add", "https://erp.example.com/hooks", "--event", "*"), ("webhooks", "deliver"),
                 ("serve", "--deliver-every", "0")):  # the server refuses to start, it does not fail later
        r = cli(*args)
        assert r.exit_code == 2 and "crm.toml [webhooks]" in r.output and message in r.output, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1


# -- at delivery ---------------------------------------------------------------------------------

class Spy:
    """Stands in for the HTTP client: records where each delivery would connect."""

    def __init__(self) -> None:
        self.targets: list[Target] = []

    def __call__(self, target: Target, body: bytes, headers: dict[str, str]) -> int:
        self.targets.append(target)
        return 204


def subscribed_event(crm: CRM, url: str) -> None:
    """A subscription stored as it is (as one made before targets were checked), and one event."""
    with crm.unit_of_work("admin") as uow:
        uow.session.add(WebhookSubscription(url=url, events=["*"], secret="s" * 20, active=True, created_by="admin"))
    with crm.unit_of_work("anna") as uow:
        uow.customers.create(CustomerCreate(name="Event"))


def last_error(crm: CRM) -> str:
    with crm.unit_of_work("check", read_only=True) as uow:
        d = uow.session.scalar(select(WebhookDelivery))
        assert d is not None and d.status == "pending" and d.attempts == 1
        return d.last_error or ""


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/", "http://localhost/",
                                 "http://x\r\nHost: evil/", "http://"])
def test_a_stored_hostile_target_is_refused_at_delivery(crm: CRM, url: str) -> None:
    subscribed_event(crm, url)
    spy = Spy()
    run = deliver(crm, post=spy, resolve=lambda host, port: pytest.fail("a refused URL is not resolved"))
    assert (run.delivered, run.failed) == (0, 1) and spy.targets == []
    assert last_error(crm).startswith("refused target: invalid webhook URL")


@pytest.mark.parametrize("answer", [["127.0.0.1"], ["169.254.169.254"], ["10.0.0.1"], ["::1"], ["fd00::5"],
                                    ["8.8.8.8", "192.168.0.1"], ["::ffff:10.0.0.1"]])
def test_a_name_that_resolves_inside_is_refused(crm: CRM, answer: list[str]) -> None:
    subscribed_event(crm, "https://looks-public.example/hook")
    spy = Spy()
    run = deliver(crm, post=spy, resolve=lambda host, port: answer)
    assert run.failed == 1 and spy.targets == []
    assert "resolves to" in last_error(crm) and "not a public address" in last_error(crm)


def test_an_unresolvable_name_is_retried(crm: CRM) -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    subscribed_event(crm, "https://gone.example/hook")
    assert deliver(crm, post=Spy(), resolve=nxdomain).failed == 1
    assert "gaierror" in last_error(crm)


def test_delivery_connects_to_the_address_it_checked(crm: CRM) -> None:
    """One look-up per attempt, and the request goes to its answer (a second, different answer of
    a rebinding DNS server is never asked for)."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    subscribed_event(crm, "https://rebind.example:8443/hook")
    spy = Spy()
    assert deliver(crm, post=spy, resolve=rebinding).delivered == 1
    assert asked == ["rebind.example"] and spy.targets == [Target("https://rebind.example:8443/hook", "93.184.216.34", "rebind.example")]


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict[str, str]]]]:
    """A local HTTP server on 127.0.0.1 that records the headers of each POST."""
    got: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            got.append(dict(self.headers))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], got
    server.shutdown()


def test_an_allow_listed_name_is_sent_to_its_resolved_address_with_its_host(
        make_crm: Callable[..., CRM], receiver: tuple[int, list[dict[str, str]]]) -> None:
    crm = make_crm(config={"webhooks": {"allow_hosts": ["hooks.internal"]}})
    port, got = receiver
    subscribed_event(crm, f"http://hooks.internal:{port}/hook")
    run = deliver(crm, resolve=lambda host, p: ["127.0.0.1"])  # the real HTTP client; the name is not in any DNS
    assert run.delivered == 1, run.errors
    assert got[0]["Host"] == f"hooks.internal:{port}"


# -- properties ----------------------------------------------------------------------------------

HOSTS = st.one_of(
    st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
    st.sampled_from(["localhost", "hooks.internal", "HOOKS.INTERNAL.", "example.com", "127.1", "2130706433", "0x7f.1", "",
                     "foo.localhost", "b\u00fccher.example", "10.20.0.7", "\uff11\uff12\uff17.\uff10.\uff10.\uff11", "[::ffff:127.0.0.1]", "[64:ff9b::a9fe:a9fe]"]),
    st.from_regex(r"\A[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}\Z"),
    st.text(max_size=30),
)
URLS = st.one_of(
    st.builds(lambda scheme, user, host, port, path: f"{scheme}{user}{host}{port}{path}",
              st.sampled_from(["http://", "https://"] * 4 + ["HTTP://", "ftp://", "", "javascript:", "http:/", "http:\\\\"]),
              st.sampled_from([""] * 8 + ["user:pw@", "@"]), HOSTS,
              st.one_of(st.just(""), st.just(""), st.integers(-1, 70000).map(lambda p: f":{p}")),
              st.one_of(st.just("/"), st.from_regex(r"\A/[a-z0-9/_.%-]{0,20}\Z"), st.text(max_size=20).map(lambda t: "/" + t))),
    st.text(max_size=60),
)


def allowed_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a resolver would read ``text`` as (standard and legacy IPv4 forms, also
    after IDNA folding: full-width digits), else None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(ascii_form(text)))
        except (OSError, ValueError):
            return None


def ascii_form(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii").rstrip(".") if not host.isascii() else host
    except UnicodeError:
        return host


def assert_safe(url: str) -> None:
    """What an accepted URL must be, judged independently of the implementation's code paths."""
    assert all(unicodedata.category(ch)[0] not in "CZ" and ch != "\\" for ch in url)
    parts = urlsplit(url)
    assert parts.scheme.lower() in ("http", "https") and parts.hostname and "@" not in parts.netloc
    host = ascii_form(parts.hostname.rstrip("."))
    if host in ("hooks.internal",):
        return
    assert host != "localhost" and not host.endswith(".localhost")
    ip = allowed_address(host)
    if ip is not None:
        v4 = getattr(ip, "ipv4_mapped", None) or ip
        assert (v4.is_global and not v4.is_multicast) or str(v4) == "127.0.0.1" or v4 in ipaddress.ip_network("10.20.0.0/16")


@pytest.fixture
def allowing(make_crm: Callable[..., CRM]) -> CRM:
    """One CRM for all the examples of a property (each example adds to it)."""
    return make_crm(config={"webhooks": {"allow_hosts": ALLOW}})


@settings(max_examples=150)
@given(url=URLS)
def test_any_url_is_stored_as_a_safe_target_or_refused(allowing: CRM, url: str) -> None:
    crm = allowing
    before = stored(crm)
    try:
        with crm.unit_of_work("admin") as uow:
            subscriptions.add(uow, url, ["*"])
    except InvalidInput as e:
        assert "\n" not in str(e) and "\r" not in str(e) and stored(crm) == before
        return
    assert_safe(url)
    assert stored(crm) == (before[0] + 1, before[1] + 1)


@settings(max_examples=300)
@given(url=URLS, answer=st.lists(st.ip_addresses().map(str), min_size=1, max_size=3))
def test_pin_connects_only_to_a_checked_address(url: str, answer: list[str]) -> None:
    allow = policy({"webhooks": {"allow_hosts": ALLOW}})
    try:
        target = pin(url, allow, resolve=lambda host, port: answer)
    except InvalidInput:
        return
    assert target.url == url
    assert_safe(url)
    check_url(target.url, allow)
    host = ascii_form((urlsplit(url).hostname or "").rstrip("."))
    if allowed_address(host) is None and host != "hooks.internal":  # a name: its answer decided
        assert target.address == answer[0]
        for a in answer:
            ip = ipaddress.ip_address(a)
            v4 = getattr(ip, "ipv4_mapped", None) or ip
            assert (v4.is_global and not v4.is_multicast) or str(v4) == "127.0.0.1" or v4 in ipaddress.ip_network("10.20.0.0/16")
