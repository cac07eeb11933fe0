"""Which URLs a webhook may be delivered to (SSRF protection, SPEC §9.1).

A URL is accepted when all of these hold:

* it is printable ASCII with no whitespace: no CR, LF, TAB, NUL, space or other control
  character anywhere (percent-encode them in the path; international names in punycode);
* the scheme is ``https`` with a host, no user info and a port in 1–65535; the authority
  is exactly ``host`` or ``host:port`` (a port of digits without a leading zero, nothing
  after a bracketed IPv6 address but ``:port``), so every parser reads the same host;
* the host is either a DNS name — labels of letters, digits, ``-`` and ``_``, the last one
  not numeric, and not ``localhost``, ``localhost.`` or a name under ``.localhost`` — or an
  IP address written canonically: dotted-decimal IPv4 or bracketed IPv6 without a zone.
  Every other notation a resolver reads as an address (``127.1``, ``0x7f000001``,
  ``2130706433``, ``0177.0.0.1``; anything :func:`socket.inet_aton` accepts) is refused;
* an address must be globally routable (:func:`is_public`: ``ipaddress`` ``is_global``, not
  multicast, and for IPv6 forms that carry an IPv4 address — ``::ffff:a.b.c.d``,
  ``::a.b.c.d``, ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d`` — that address too).

At delivery, :func:`resolve` looks a DNS name up exactly once and requires every address it
answers to pass the same rule; the caller connects to those very addresses (TLS still
verifies, and SNI names, the hostname), so a second lookup cannot rebind the name to an
internal address.

The local stack sets ``ALLOW_LOOPBACK_WEBHOOKS=true`` (template parameter
``AllowLoopbackWebhooks``): a local receiver's addresses (``127.0.0.1``, ``::1``) and the
name ``localhost`` are then allowed too, over ``http`` or ``https`` — ``http`` only to them;
other loopback forms (``127.0.0.2``, ``::ffff:127.0.0.1``) stay refused.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
# host[:port] and nothing else: a bracketed IPv6 literal or a name/IPv4 of URL-safe
# characters (their rules are checked after), then an optional port with no leading zero.
_AUTHORITY = re.compile(r"(\[[0-9A-Za-z:.%_~-]+\]|[0-9A-Za-z._~-]+)(:[1-9][0-9]{0,4})?")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# IPv6 ranges whose last 32 bits are an IPv4 address the packet may end up at.
_CARRY_IPV4 = [ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96",
                                                 "64:ff9b::/96")]


class UnsafeTarget(ValueError):
    """The URL or an address its host resolves to may not be called; the message says why."""


@dataclass(frozen=True)
class WebhookTarget:
    """A checked webhook URL, split the way delivery uses it.

    ``host`` is the lower-case DNS name (no trailing dot) or the canonical address text
    (IPv6 without brackets); ``address`` is set when the host is an IP literal; ``target`` is
    the request target (``/path?query``).
    """

    scheme: str
    host: str
    port: int
    target: str
    address: Address | None

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the host as written, with the port when not the default."""
        shown = f"[{self.host}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return shown if self.port == default else f"{shown}:{self.port}"


def allow_loopback() -> bool:
    """True in the local stack (``ALLOW_LOOPBACK_WEBHOOKS=true``), False on AWS."""
    return os.environ.get("ALLOW_LOOPBACK_WEBHOOKS", "false").lower() == "true"


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address (any IPv4 an IPv6 form carries included)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        if any(address in network for network in _CARRY_IPV4):
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


# The loopback addresses the local stack allows, written plainly: a local receiver's.
_LOCAL_RECEIVERS = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))


def may_call(address: Address, loopback_ok: bool | None = None) -> bool:
    """True when a delivery may connect to ``address``: a public one; in the local stack
    also ``127.0.0.1`` or ``::1`` (not other loopback forms, such as ``127.0.0.2`` or the
    IPv4-mapped ``::ffff:127.0.0.1``, which SPEC §9.1 lists among those to refuse)."""
    loopback_ok = allow_loopback() if loopback_ok is None else loopback_ok
    return is_public(address) or (loopback_ok and address in _LOCAL_RECEIVERS)


def _literal(host: str, bracketed: bool) -> Address | None:
    """The address a host denotes literally, None for a DNS name.

    Raises:
        UnsafeTarget: a malformed name, or an address in a non-canonical notation.
    """
    if bracketed:
        try:
            v6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeTarget("has a malformed IPv6 address") from None
        if v6.scope_id:
            raise UnsafeTarget("must not carry an IPv6 zone")
        return v6
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        pass
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeTarget("has a malformed host name")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            socket.inet_aton(name)
        except OSError:
            raise UnsafeTarget("has a malformed IPv4 address") from None
        raise UnsafeTarget("must write an IPv4 address in dotted-decimal form (a.b.c.d)")
    return None


def _check_host_name(name: str) -> None:
    """Refuse a host name no DNS lookup can find: labels of 1–63 letters, digits and
    hyphens, no hyphen first or last, at most 253 characters (RFC 1123 §2.1), and an
    ``xn--`` label that is valid Punycode of a valid IDNA 2008 label (RFC 5891), checked by
    the ``idna`` package (imported here: only registering and delivering need it).

    Raises:
        UnsafeTarget: ``name`` is not such a host name (``xn--zz``, ``my_host.example``).
    """
    import idna

    try:
        idna.encode(name)
    except idna.IDNAError as err:
        raise UnsafeTarget(f"has an invalid host name ({err})") from None


def parse_url(url: str, loopback_ok: bool | None = None) -> WebhookTarget:
    """Check ``url`` against the rules above and split it for delivery.

    Raises:
        UnsafeTarget: the URL breaks a rule (the message completes "url …").
    """
    loopback_ok = allow_loopback() if loopback_ok is None else loopback_ok
    if not _PRINTABLE_ASCII.fullmatch(url):
        raise UnsafeTarget("must be printable ASCII without spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise UnsafeTarget("is not a well-formed URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UnsafeTarget("must be an absolute https:// URL")
    if "@" in parts.netloc:
        raise UnsafeTarget("must not carry credentials")
    if not _AUTHORITY.fullmatch(parts.netloc):
        raise UnsafeTarget("must have a host, and a port of digits if any, and nothing else")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise UnsafeTarget("has an invalid port")
    port = port or (443 if parts.scheme == "https" else 80)
    address = _literal(host, parts.netloc.startswith("["))
    name = host.removesuffix(".")
    if address is None:
        _check_host_name(name)
    if address is None and (name == "localhost" or name.endswith(".localhost")):
        local = loopback_ok and host == "localhost"
        if not local:
            raise UnsafeTarget("must not point at localhost")
    elif address is not None and not may_call(address, loopback_ok):
        raise UnsafeTarget("must point at a globally routable address")
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if parts.scheme != "https" and not (loopback_ok and loopback):
        raise UnsafeTarget("must use https")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(parts.scheme, str(address) if address else name, port, target, address)


def resolve(target: WebhookTarget, loopback_ok: bool | None = None) -> list[Address]:
    """The addresses to connect to for ``target``, each one checked; a DNS name is looked up
    once, here (connect only to what this returns).

    Raises:
        UnsafeTarget: the name does not resolve, or any address it resolves to is refused.
    """
    if target.address is not None:
        found = [target.address]
    else:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except OSError as err:
            raise UnsafeTarget(f"{target.host} does not resolve: {err}") from err
        found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    refused = [str(a) for a in found if not may_call(a, loopback_ok)]
    if refused or not found:
        raise UnsafeTarget(f"{target.host} resolves to refused addresses {refused}")
    return found
