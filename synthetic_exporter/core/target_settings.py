"""A target's settings (SYNTHETIC_TARGETS__<NAME>__*): TargetSettings, its URL and header checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

from synthetic_exporter.core.durations import PositiveDuration

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "FRAMING_HEADERS",
    "HEADER_NAME",
    "HEADER_VALUE",
    "HOST_NAME",
    "OAUTH2_FIELDS",
    "OAUTH2_REQUIRED",
    "OAUTH2_RESERVED_PARAMS",
    "OAUTH2_SCOPE",
    "TargetSettings",
    "TlsVersion",
    "header_problem",
    "mask_url_password",
]

# What h11 accepts in a request header (RFC 9110), limited to ASCII as httpx encodes values so.
HEADER_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# Headers that frame a message: a default value would contradict each request's body.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
HEADER_VALUE = re.compile(r"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
OAUTH2_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# Form fields of the token request the agent sets itself.
OAUTH2_RESERVED_PARAMS = frozenset({"grant_type", "scope", "client_id", "client_secret"})
OAUTH2_REQUIRED = ("oauth2_token_url", "oauth2_client_id", "oauth2_secret")
OAUTH2_FIELDS = (*OAUTH2_REQUIRED, "oauth2_scopes", "oauth2_params")
# A body larger than this is not what a check expects: it fails instead of filling the memory.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
# TLS protocol versions, named as blackbox_exporter's tls_config names them.
TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
# A DNS host name (RFC 1123 labels), ASCII: what a certificate's DNS names are compared with.
HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


def mask_url_password(url: str) -> str:
    """Return ``url`` with the password of its userinfo (``user:password@``) shown as ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def header_problem(value: str) -> str | None:
    """Return why ``value`` cannot be sent as a header value, or None (never quotes the value)."""
    if HEADER_VALUE.fullmatch(value):
        return None
    if any(c in value for c in "\r\n"):
        return "has a line break"
    if not value.isascii():
        return "has non-ASCII characters (httpx sends header values as ASCII)"
    if value != value.strip(" \t"):
        return "starts or ends with whitespace"
    return "has a control character"


def _split_url(url: str) -> SplitResult | None:
    """Return the parts of ``url``, or None when it cannot be parsed (a bad port included)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return None
    return parts


def _absolute_http_url(value: str) -> str:
    """Return ``value`` stripped if it is an absolute http(s) URL without query or fragment."""
    url = value.strip()
    shown = mask_url_password(value)
    parts = _split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http(s) URL, got {shown!r}")
    if not url.isprintable():
        raise ValueError(f"has control characters (tab, line break...), got {shown!r}")
    if any(c.isspace() for c in parts.netloc):
        raise ValueError(f"the host has spaces, got {shown!r}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError(f"must not have a query or fragment, got {shown!r}")
    return url


class TargetSettings(BaseModel):
    """An HTTP API that checks call, e.g. SYNTHETIC_TARGETS__API__BASE_URL."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    base_url: str
    """Absolute http:// or https:// URL that request paths are relative to."""
    headers: dict[str, str] = {}
    """Default headers sent on every request."""
    timeout: PositiveDuration = 10.0
    """Per-request timeout."""
    verify: bool = True
    """Verify the server's TLS certificate."""
    ca_bundle: Path | None = None
    """CA bundle file used for TLS verification."""
    http2: bool = False
    """Use HTTP/2."""
    fresh_connections: bool = False
    """Open new connections for every suite run, so DNS, TCP and TLS are measured each run."""
    bearer_secret: str | None = None
    """Name of a secret (SYNTHETIC_SECRETS__<NAME>) sent as ``Authorization: Bearer``."""
    proxy_url: str | None = None
    """http:// proxy (``http://host:port``) that requests go through, by CONNECT tunnels."""
    proxy_auth_secret: str | None = None
    """Name of a secret holding ``user:password`` for the proxy's Basic authentication."""
    # TLS options (issue 18): client certificate (mTLS), server name (SNI), protocol versions.
    client_cert: Path | None = None
    """PEM client certificate sent when the server asks for one (mTLS); may also hold its key."""
    client_key: Path | None = None
    """PEM private key of CLIENT_CERT, when the certificate's file does not hold it."""
    client_key_password_secret: str | None = None
    """Name of a secret holding the password of an encrypted client key."""
    server_name: str | None = None
    """TLS server name sent (SNI) and verified, instead of the BASE_URL's host."""
    min_tls_version: TlsVersion | None = None
    """Lowest TLS version offered: TLS10, TLS11, TLS12 or TLS13."""
    max_tls_version: TlsVersion | None = None
    """Highest TLS version offered: TLS10, TLS11, TLS12 or TLS13."""
    # Network options (issue 18): IP family, response size limit.
    ip_protocol: Literal["ip4", "ip6"] | None = None
    """IP family whose addresses are tried first (ip4 or ip6); unset: the resolver's order."""
    ip_protocol_fallback: bool = True
    """With IP_PROTOCOL, also try the other family's addresses; false: that family only."""
    max_body_bytes: ByteSize = Field(default=ByteSize(DEFAULT_MAX_BODY_BYTES), gt=0)
    """Largest response body read (e.g. 10MiB, 2GB); a larger one fails the request."""

    @field_validator("ip_protocol", mode="before")
    @classmethod
    def _lower_ip_protocol(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_network(self) -> TargetSettings:
        if self.ip_protocol is None and not self.ip_protocol_fallback:
            raise ValueError("IP_PROTOCOL_FALLBACK=false needs IP_PROTOCOL (ip4 or ip6)")
        if self.ip_protocol is not None and self.proxy_url is not None:
            raise ValueError(
                "IP_PROTOCOL has no effect with PROXY_URL (the proxy resolves the target's name):"
                " unset one of them"
            )
        return self

    # Target authentication: basic auth and OAuth2 client credentials (issue 18).
    basic_auth_secret: str | None = None
    """Name of a secret holding ``user:password`` sent as ``Authorization: Basic``."""
    oauth2_token_url: str | None = None
    """OAuth2 token endpoint (absolute http(s) URL) of the client credentials grant."""
    oauth2_client_id: str | None = None
    """OAuth2 client id, sent with the client secret as the token request's Basic auth."""
    oauth2_secret: str | None = None
    """Name of a secret holding the OAuth2 client secret."""
    oauth2_scopes: list[str] = []
    """OAuth2 scopes asked for (a JSON list; sent space-separated)."""
    oauth2_params: dict[str, str] = {}
    """Extra form fields of the OAuth2 token request (e.g. ``audience``)."""

    @field_validator(
        "bearer_secret",
        "proxy_auth_secret",
        "client_key_password_secret",
        "basic_auth_secret",
        "oauth2_secret",
    )
    @classmethod
    def _lower_secret_name(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None

    @field_validator("proxy_url")
    @classmethod
    def _check_proxy_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip()
        shown = mask_url_password(url)
        parts = _split_url(url)
        if parts is None or parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"must be an http:// proxy URL (http://host:port), got {shown!r}")
        if "@" in parts.netloc:
            raise ValueError(
                "must not carry credentials (user:password@): put them in a secret named by"
                " PROXY_AUTH_SECRET"
            )
        if not url.isprintable() or parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError(f"must be http://host[:port] only, got {shown!r}")
        return url.rstrip("/")

    @field_validator("client_cert", "client_key", mode="before")
    @classmethod
    def _refuse_empty_file(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty (unset it instead)")
        return value

    @field_validator("min_tls_version", "max_tls_version", mode="before")
    @classmethod
    def _upper_tls_version(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("server_name")
    @classmethod
    def _check_server_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().lower().removesuffix(".")
        if HOST_NAME.fullmatch(name) is None:
            raise ValueError(
                f"must be a host name such as api.example.com (letters, digits, hyphens and dots;"
                f" international names in their xn-- form), got {value!r}"
            )
        return name

    @model_validator(mode="after")
    def _check_proxy(self) -> TargetSettings:
        if (
            self.proxy_url is not None
            and self.http2
            and not self.base_url.lower().startswith("https:")
        ):
            raise ValueError("PROXY_URL with HTTP2 needs an https:// BASE_URL (tunnelled TLS)")
        if self.proxy_auth_secret is not None and self.proxy_url is None:
            raise ValueError("PROXY_AUTH_SECRET is set but PROXY_URL is not")
        return self

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _absolute_http_url(value).rstrip("/")

    @field_validator("oauth2_token_url")
    @classmethod
    def _check_token_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = _absolute_http_url(value)
        if "@" in urlsplit(url).netloc:
            raise ValueError(
                "must not carry credentials (user:password@): the client authenticates with"
                " OAUTH2_CLIENT_ID and OAUTH2_SECRET"
            )
        return url

    @field_validator("oauth2_client_id")
    @classmethod
    def _check_client_id(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.isprintable()):
            raise ValueError("must be a non-empty printable string")
        return value

    @field_validator("oauth2_scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not OAUTH2_SCOPE.fullmatch(scope):
                raise ValueError(
                    f"invalid scope {scope!r}: printable ASCII without spaces, quotes or"
                    " backslashes (RFC 6749 §3.3)"
                )
        return value

    @field_validator("oauth2_params")
    @classmethod
    def _check_params(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name:
                raise ValueError("a form field name must not be empty")
            if name.lower() in OAUTH2_RESERVED_PARAMS:
                raise ValueError(
                    f"{name!r} is set by the agent (grant_type, scope from OAUTH2_SCOPES, client"
                    " credentials from OAUTH2_CLIENT_ID and OAUTH2_SECRET)"
                )
        return value

    @model_validator(mode="after")
    def _check_authentication(self) -> TargetSettings:
        oauth2 = [f for f in OAUTH2_FIELDS if getattr(self, f)]
        kinds = [f.upper() for f in ("bearer_secret", "basic_auth_secret") if getattr(self, f)]
        kinds += [f.upper() for f in oauth2[:1]]
        if any(name.lower() == "authorization" for name in self.headers):
            kinds.insert(0, "HEADERS (Authorization)")
        if len(kinds) > 1:
            both = " and ".join(kinds)
            raise ValueError(f"{both} are both set: a target has one kind of authentication")
        missing = [f.upper() for f in OAUTH2_REQUIRED if oauth2 and getattr(self, f) is None]
        if missing:
            raise ValueError(
                f"{oauth2[0].upper()} is set but {' and '.join(missing)} not: OAuth2 needs"
                " OAUTH2_TOKEN_URL, OAUTH2_CLIENT_ID and OAUTH2_SECRET"
            )
        return self

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not HEADER_NAME.fullmatch(name):
                raise ValueError(
                    f"invalid header name {name!r}: letters, digits and !#$%&'*+-.^_`|~ only"
                )
            if name.lower() in FRAMING_HEADERS:
                raise ValueError(f"header {name!r} is set per request, not as a default header")
            problem = header_problem(text)
            if problem is not None:
                raise ValueError(f"the value of header {name!r} {problem}")
        return value
