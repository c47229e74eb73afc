"""Which reply queues a server may send to: the defence against reply-to injection.

Anyone who can send to a request queue chooses the request's ``ReplyTo``. Without a check, a
server would send its handler's answer to any queue its credentials can write to. That answer
may be data the sender is not allowed to read, or a message that triggers work elsewhere. So
a server replies only to queues that pass its :class:`ReplyPolicy`:

- by default, queues whose name starts with the reply prefix (``sqs-rpc-reply-``), on the
  same SQS endpoint (so the same region) and in the same account as the request queue;
- or queues matching the ``reply_to_allowed`` patterns;
- or queues accepted by a ``reply_to_allowed`` callable.

Queue URLs are parsed with one strict regular expression instead of ``urllib.parse``. A URL is
``scheme://host[:port]/ACCOUNT/NAME`` and nothing else. So userinfo (``user@host``), encoded
characters, dot segments, backslashes, queries and fragments never reach a comparison.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqs_rpc._errors import ConfigurationError
from sqs_rpc._interop import reply_destination

__all__ = ["QueueAddress", "ReplyPolicy", "ReplyToAllowed", "parse_queue_url"]

ReplyToAllowed = Callable[[str], bool] | Sequence[str]

_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    r"/(?P<account>[0-9]{12})"
    r"/(?P<name>[A-Za-z0-9_-]{1,75}\.fifo|[A-Za-z0-9_-]{1,80})"
)
# Every AWS endpoint form of a region names that region, and they are all the same place: a
# queue URL's host does not choose where a reply goes (the server's own SQS client does), its
# region, account and name do. So FIPS, dual-stack, legacy and VPC endpoint hosts of one region
# compare equal; boto3 makes the FIPS or dual-stack form when AWS_USE_FIPS_ENDPOINT or
# AWS_USE_DUALSTACK_ENDPOINT is set, while SQS writes queue URLs in the standard form.
_REGION = r"(?P<region>[a-z]+(?:-[a-z]+)+-[0-9]+)"
# The partitions' DNS suffixes (botocore's partitions.json): standard, then dual-stack.
_SUFFIXES = (
    r"amazonaws\.com",
    r"amazonaws\.com\.cn",
    r"amazonaws\.eu",
    r"c2s\.ic\.gov",
    r"sc2s\.sgov\.gov",
    r"cloud\.adc-e\.uk",
    r"csp\.hci\.ic\.gov",
    r"api\.aws",
    r"api\.amazonwebservices\.com\.cn",
    r"api\.amazonwebservices\.eu",
    r"api\.aws\.ic\.gov",
    r"api\.aws\.scloud",
    r"api\.cloud-aws\.adc-e\.uk",
    r"api\.aws\.hci\.ic\.gov",
)
_SUFFIX = "(?:" + "|".join(_SUFFIXES) + ")"
_AWS_HOSTS = (
    # sqs.REGION.SUFFIX and sqs-fips.REGION.SUFFIX (standard, FIPS, dual-stack, both).
    re.compile(rf"sqs(?:-fips)?\.{_REGION}\.{_SUFFIX}"),
    # The legacy REGION.queue.amazonaws.com (and its China and other partition forms).
    re.compile(rf"{_REGION}\.queue\.{_SUFFIX}"),
    # Interface VPC endpoints: vpce-ID[-AZ].sqs.REGION.vpce.amazonaws.com[.cn].
    re.compile(
        rf"vpce-[a-z0-9]+(?:-[a-z0-9]+)*\.sqs(?:-fips)?\.{_REGION}\.vpce\.amazonaws\.com"
        r"(?:\.cn)?"
    ),
)
_US_EAST_1_LEGACY = "queue.amazonaws.com"  # the oldest form, for us-east-1 only
_DEFAULT_PORTS = {"http": "80", "https": "443"}


@dataclass(frozen=True)
class QueueAddress:
    """A queue URL taken apart: where the endpoint is, which account, which queue."""

    endpoint: str  # "aws:REGION" for AWS endpoints, else "scheme://host:port"
    account: str
    name: str


def parse_queue_url(url: object) -> QueueAddress | None:
    """Parse a queue URL strictly; None when it is not exactly ``scheme://host[:port]/ACCT/NAME``."""
    if not isinstance(url, str):
        return None
    match = _URL.fullmatch(url)
    if match is None:
        return None
    scheme, host = match["scheme"], match["host"].lower()
    if ".." in host:
        return None
    port = match["port"] or _DEFAULT_PORTS[scheme]
    endpoint = f"{scheme}://{host}:{int(port)}"
    if host == _US_EAST_1_LEGACY and port == _DEFAULT_PORTS[scheme]:
        endpoint = "aws:us-east-1"
    for pattern in _AWS_HOSTS:
        aws = pattern.fullmatch(host)
        if aws is not None and port == _DEFAULT_PORTS[scheme]:
            endpoint = f"aws:{aws['region']}"
            break
    return QueueAddress(endpoint=endpoint, account=match["account"], name=match["name"])


class ReplyPolicy:
    """Decides whether a server may send a reply to a ``ReplyTo`` URL.

    ``allowed`` is one of three things:

    - None: the default rule. The queue is on the same endpoint and in the same account as
      ``request_queue_url``, and its name starts with ``prefix`` (or one of several prefixes).
    - A sequence of :func:`fnmatch.fnmatchcase` patterns, matched against well-formed queue
      URLs.
    - A callable, given the raw URL.

    The default rule and patterns judge a Java virtual queue URL (``HOST#NAME``) by its host
    queue. A callable gets it whole, as the request named it.
    """

    def __init__(
        self,
        request_queue_url: str,
        *,
        prefix: str | Sequence[str],
        allowed: ReplyToAllowed | None,
    ) -> None:
        self._check: Callable[[str], bool]
        if allowed is None:
            home = parse_queue_url(request_queue_url)
            if home is None:
                raise ConfigurationError(
                    f"cannot tell the account and endpoint of {request_queue_url!r} (expected "
                    "scheme://host[:port]/ACCOUNT/NAME), so the default reply policy cannot "
                    "apply; pass reply_to_allowed= (patterns or a callable)"
                )
            prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
            if not prefixes or not all(isinstance(p, str) and p for p in prefixes):
                raise ConfigurationError(
                    f"reply_queue_prefix={prefix!r} must be a non-empty string (or a list of "
                    "them): the start of every reply queue name this server may reply to"
                )
            self._check = lambda url: _same_home(url, home, prefixes)
            self.description = (
                f"queues in account {home.account} at {home.endpoint} named "
                + " or ".join(f"{p}*" for p in prefixes)
            )
        elif callable(allowed):
            self._check = allowed
            self.description = f"queues accepted by {allowed!r}"
        elif isinstance(allowed, str | bytes) or not isinstance(allowed, Sequence):
            raise ConfigurationError(
                f"reply_to_allowed={allowed!r} must be a list of URL patterns or a callable; "
                "wrap a single pattern in a list"
            )
        else:
            patterns = tuple(allowed)
            for pattern in patterns:
                if not isinstance(pattern, str) or not pattern:
                    raise ConfigurationError(
                        f"reply_to_allowed pattern {pattern!r} must be a non-empty string"
                    )
            self._check = lambda url: _matches(url, patterns)
            self.description = f"queues matching {list(patterns)}"

    def allows(self, reply_to: str) -> bool:
        """True when a reply may be sent to ``reply_to``, the raw ``ReplyTo`` of a request."""
        try:
            return bool(self._check(reply_to))
        except Exception:
            # A broken user callable must refuse, never open the door.
            return False


def _host_queue(url: str) -> str | None:
    """The queue a reply to ``url`` goes to: a Java virtual queue's host; None if invalid."""
    destination = reply_destination(url)
    return None if destination is None else destination[0]


def _same_home(url: str, home: QueueAddress, prefixes: tuple[str, ...]) -> bool:
    address = parse_queue_url(_host_queue(url))
    return (
        address is not None
        and address.endpoint == home.endpoint
        and address.account == home.account
        and address.name.startswith(prefixes)
    )


def _matches(url: str, patterns: tuple[str, ...]) -> bool:
    # Patterns apply only to well-formed queue URLs, so "*" cannot stretch over userinfo,
    # a query or extra path segments.
    host = _host_queue(url)
    return (
        host is not None
        and parse_queue_url(host) is not None
        and any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns)
    )
