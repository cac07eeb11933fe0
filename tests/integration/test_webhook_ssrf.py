"""Webhook URLs cannot reach internal networks (SPEC §9.1, issue 8).

Registration refuses every notation of a non-public address and any control character;
delivery resolves the host once, checks every address, and connects to the address it
checked (no second lookup for a rebinding DNS server to answer differently), with TLS
verified for the URL's host name.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contacts_core.webhooks import urls as webhook_urls
from contacts_core.webhooks.delivery import DeliveryFailed, Outcome, deliver
from contacts_core.webhooks.models import Delivery, EventData, WebhookEvent
from devstack.receiver import WebhookReceiver, verify

PUBLIC = "93.184.215.14"  # a globally routable address; the tests route it to a local server
UNREACHABLE = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"  # public too; refuses every connection
HOOK_HOST = "hooks.example.com"


@pytest.fixture(autouse=True)
def on_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The AWS rules: no loopback exception (the session's ``sqs`` fixture may allow it)."""
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "false")


def create(api, org_id, url):
    return api.request("POST", "/v1/webhook-endpoints", org_id=org_id,
                       json_body={"url": url, "events": ["*"]})


REFUSED = [
    "https://127.1/hook",                      # shortened dotted quad
    "https://0x7f000001/hook",                 # hexadecimal
    "https://0X7F.0.0.1/hook",                 # hexadecimal part
    "https://2130706433/hook",                 # decimal
    "https://0177.0.0.1/hook",                 # octal
    "https://127.0.0.1./hook",                 # trailing dot
    "https://100.64.0.1/hook",                 # carrier-grade NAT (is_private is False)
    "https://[::ffff:127.0.0.1]/hook",         # IPv4-mapped IPv6
    "https://[::ffff:100.64.0.1]/hook",        # IPv4-mapped CGNAT (is_global says True)
    "https://[::ffff:a9fe:a9fe]/latest",       # IPv4-mapped metadata address, hex form
    "https://[64:ff9b::a00:5]/hook",           # NAT64 of 10.0.0.5
    "https://[::7f00:1]/hook",                 # IPv4-compatible loopback
    "https://[fe80::1%25eth0]/hook",           # zone id
    "https://[fd00::1]/hook",                  # unique local
    "https://224.0.0.1/hook",                  # multicast (is_global says True)
    "https://0.0.0.0/hook", "https://0/hook",  # unspecified
    "https://localhost/hook", "https://localhost./hook", "https://api.localhost/hook",
    "https://LOCALHOST/hook",
    "https://999.1.1.1/hook",                  # numeric, yet no address
    "https://hooks.example.com/a\r\nX-Injected: 1",
    "https://hooks.example.com/a\nb", "https://hooks.example.com/a\tb",
    "https://hooks.example.com/a\x00b", "https://hooks.example.com/a b",
    "https://hooks.example.com/\r\n", " https://hooks.example.com/a",
    "https://hooks.example.com/a\u00a0b", "https://hooks.exam\u2028ple.com/",
    "https://evil.example\\@127.0.0.1/", "https://user:pass@hooks.example.com/",
    "http://hooks.example.com/hook",           # https only on AWS
    "http://127.0.0.1:4000/",                  # loopback only in the local stack
    "https://hooks.example.com:0/", "https://hooks.example.com:70000/",
    "https://[not-an-address]/",
    # an authority that is not exactly host[:port] (parsers disagree on what it means)
    "https://[2606:4700:4700::1111]x/", "https://[2606:4700:4700::1111]junk:8443/",
    "https://hooks.example.com:/", "https://hooks.example.com:0443/",
    "https://hooks.example.com:443:443/", "https://hooks.example.com:+443/",
    "https://[2606:4700:4700::1111/", "https://2606:4700:4700::1111]/",
    "https://xn--zz/hook", "https://hooks.xn--zz.example/",  # not valid Punycode
    "https://my_host.example.com/", "https://-hooks.example.com/",
    "https://hooks..example.com/", f"https://{'a' * 64}.example.com/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_registration_refuses_internal_or_malformed_urls(api, org_id, url):
    # Given an org on AWS rules
    # When an endpoint is registered with the URL
    response = create(api, org_id, url)
    # Then it is refused naming url, and nothing is stored
    assert response.status == 400, (url, response.body)
    assert [e["field"] for e in response.body["errors"]] == ["url"]
    assert api.request("GET", "/v1/webhook-endpoints", org_id=org_id).body["data"] == []


@pytest.mark.parametrize("url", ["https://127.1/hook", "https://hooks.example.com/\r\nX: 1"])
def test_a_patch_cannot_point_an_endpoint_inside(api, org_id, url):
    # Given a registered endpoint
    hook = create(api, org_id, "https://hooks.example.com/ok").body
    path = f"/v1/webhook-endpoints/{hook['id']}"
    # When its URL is changed to an internal or malformed one
    response = api.request("PATCH", path, org_id=org_id, json_body={"url": url})
    # Then the change is refused and the URL stays
    assert response.status == 400
    assert [e["field"] for e in response.body["errors"]] == ["url"]
    assert api.request("GET", path, org_id=org_id).body["url"] == "https://hooks.example.com/ok"


@pytest.mark.parametrize("url", ["https://hooks.example.com/x?y=1", "https://8.8.8.8/hook",
                                 "https://[2606:4700:4700::1111]:8443/hook",
                                 "https://Hooks.Example.com./a%0Db",
                                 "https://xn--bcher-kva.example/hook",
                                 f"https://{'a' * 63}.example.com/"])
def test_public_urls_are_accepted(api, org_id, url):
    response = create(api, org_id, url)
    assert response.status == 201, response.body
    assert response.body["url"] == url


def test_the_local_stack_still_takes_loopback_http(api, org_id, monkeypatch):
    # Given the local stack's setting (template parameter AllowLoopbackWebhooks)
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "true")
    # Then loopback http is accepted, but not other http, odd notations or private ranges
    assert create(api, org_id, "http://127.0.0.1:4000/").status == 201
    assert create(api, org_id, "http://[::1]:4000/").status == 201
    for url in ("http://hooks.example.com/", "http://127.1:4000/", "https://10.0.0.5/",
                "http://localhost.:4000/", "https://[::ffff:127.0.0.1]/hook",
                "http://[::ffff:127.0.0.1]:4000/", "http://127.0.0.2:4000/",
                "https://[::ffff:7f00:1]/"):
        assert create(api, org_id, url).status == 400, url


# --- delivery ---------------------------------------------------------------------------


def _certificates(directory: Path, name: str) -> tuple[Path, ssl.SSLContext]:
    """A CA (written to ``ca.pem``) and a server context with a certificate for ``name``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem")
    return ca_path, context


class TlsReceiver:
    """devstack's receiver behind TLS with a certificate for ``hooks.example.com`` from a
    test CA the process trusts (``SSL_CERT_FILE``); records the SNI names it is asked for."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        ca_path, context = _certificates(directory, HOOK_HOST)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_path))
        self.sni: list[str | None] = []
        context.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.http = WebhookReceiver()
        self.http.server.socket = context.wrap_socket(self.http.server.socket, server_side=True)
        self.port = self.http.server.server_address[1]


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsReceiver]:
    server = TlsReceiver(tmp_path, monkeypatch)
    server.http.start()
    yield server
    server.http.stop()


class Network:
    """A resolver and a router under the test's control.

    ``answers[name]`` lists what each successive lookup of ``name`` answers (the last one
    repeats): a rebinding DNS server. Connections to :data:`PUBLIC` are recorded and
    routed to the local receiver, those to :data:`UNREACHABLE` recorded and refused;
    everything else (DynamoDB Local, …) goes through untouched.
    """

    def __init__(self, answers: dict[str, list[list[str]]], port: int) -> None:
        self.answers, self.port = answers, port
        self.lookups: list[str] = []
        self.connections: list[tuple[str, int]] = []
        self._resolve = socket.getaddrinfo
        self._connect = urllib3.util.connection.create_connection

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in self.answers:
            return self._resolve(host, port, *args, **kwargs)
        self.lookups.append(host)
        answers = self.answers[host]
        found = answers[min(len(self.lookups) - 1, len(answers) - 1)]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in found]

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any
                          ) -> socket.socket:
        if address[0] not in (PUBLIC, UNREACHABLE):
            return self._connect(address, *args, **kwargs)
        self.connections.append(address)
        if address[0] == UNREACHABLE:
            raise ConnectionRefusedError(111, "Connection refused")
        return self._connect(("127.0.0.1", self.port), *args, **kwargs)


@pytest.fixture
def network(receiver: TlsReceiver, monkeypatch: pytest.MonkeyPatch) -> Network:
    net = Network({}, receiver.port)
    monkeypatch.setattr(webhook_urls.socket, "getaddrinfo", net.getaddrinfo)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", net.create_connection)
    return net


def delivery_to(api, org_id: str, url: str) -> tuple[Delivery, str]:
    hook = create(api, org_id, url)
    assert hook.status == 201, hook.body
    event = WebhookEvent(id="evt_ssrf_1", type="contact.created",
                         created_at="2026-05-22T10:30:00.000Z", organization_id=org_id,
                         data=EventData(object={"id": "con_1"}))
    return Delivery(org_id=org_id, endpoint_id=hook.body["id"], event=event), hook.body["secret"]


def test_delivery_connects_to_the_address_it_checked(api, org_id, receiver, network):
    # Given a name whose DNS answers a public address first and loopback afterwards
    network.answers[HOOK_HOST] = [[PUBLIC], ["127.0.0.1"]]
    delivery, secret = delivery_to(api, org_id, f"https://{HOOK_HOST}:{receiver.port}/hook")
    # When the event is delivered
    outcome = deliver(delivery)
    # Then the name was looked up once and the POST went to the address that was checked,
    assert outcome is Outcome.DELIVERED
    assert network.lookups == [HOOK_HOST]
    assert network.connections == [(PUBLIC, receiver.port)]
    # with TLS verified for the host name, which SNI and Host carry
    (received,) = receiver.http.on("/hook")
    assert receiver.sni == [HOOK_HOST]
    assert received.headers["host"] == f"{HOOK_HOST}:{receiver.port}"
    assert verify(received, secret)["id"] == "evt_ssrf_1"


def test_delivery_falls_back_only_to_other_checked_addresses(api, org_id, receiver, network):
    # Given a name with two public addresses, the first refusing connections, and a DNS
    # server that would answer loopback to any later lookup
    network.answers[HOOK_HOST] = [[UNREACHABLE, PUBLIC], ["127.0.0.1"]]
    delivery, _ = delivery_to(api, org_id, f"https://{HOOK_HOST}:{receiver.port}/hook")
    # When the event is delivered
    assert deliver(delivery) is Outcome.DELIVERED
    # Then it tried the checked addresses in order, after a single lookup
    assert network.connections == [(UNREACHABLE, receiver.port), (PUBLIC, receiver.port)]
    assert network.lookups == [HOOK_HOST]
    assert len(receiver.http.on("/hook")) == 1


@pytest.mark.parametrize("internal", ["127.0.0.1", "10.0.0.5", "169.254.169.254", "100.64.0.1",
                                      "::1", "::ffff:127.0.0.1", "fd00::1", "64:ff9b::a9fe:a9fe"])
def test_delivery_refuses_a_name_with_any_internal_address(api, org_id, receiver, network,
                                                           internal):
    # Given a name that resolves to a public and an internal address
    network.answers[HOOK_HOST] = [[PUBLIC, internal]]
    delivery, _ = delivery_to(api, org_id, f"https://{HOOK_HOST}:{receiver.port}/hook")
    # When the event is delivered, Then the attempt fails without connecting anywhere
    with pytest.raises(DeliveryFailed, match="resolves to refused addresses"):
        deliver(delivery)
    assert network.lookups == [HOOK_HOST]
    assert network.connections == [] and receiver.http.received == []


def test_delivery_still_verifies_the_certificate_for_the_host_name(api, org_id, receiver,
                                                                   network):
    # Given a name that resolves to a public address whose server holds another name's
    # certificate (hooks.example.com's, not other.example.com's)
    network.answers["other.example.com"] = [[PUBLIC]]
    delivery, _ = delivery_to(api, org_id, f"https://other.example.com:{receiver.port}/hook")
    # When the event is delivered, Then TLS refuses the connection
    with pytest.raises(DeliveryFailed, match="SSL"):
        deliver(delivery)
    assert network.connections == [(PUBLIC, receiver.port)]
    assert receiver.http.received == []
