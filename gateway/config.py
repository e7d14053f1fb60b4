"""Gateway configuration: endpoints, authentication, firms and their risk limits.

A TOML file with a ``[gateway]`` table and one ``[[firms]]`` table per firm::

    [gateway]
    order_entry = "tcp://127.0.0.1:5555"
    admin = "tcp://127.0.0.1:5558"        # operator commands; loopback only
    market_data = "tcp://127.0.0.1:5556"  # feeds (PUB) and their snapshot service
    snapshots = "tcp://127.0.0.1:5557"
    plaintext = false                      # true only on loopback endpoints
    server_secret_key_file = "keys/gateway.key_secret"
    heartbeat_timeout_ms = 3000            # silent this long: the session is gone
    auction_interval_s = 60                # a call auction every minute, on the minute (0: none scheduled)
    indicative_interval_s = 10             # indicative prices in between (0: none)
    auction_time_limit_ms = 2000           # the winner-determination budget per auction (see the README)
    auction_gap_ppm = 100                  # MIP relative gap, parts per million
    [[firms]]
    name = "ALPHA"
    public_key_file = "keys/ALPHA.key"     # CURVE key made by `cx keys new ALPHA`
    max_order_qty = 1000
    max_open_qty = 100000                  # per instrument, both sides
    max_msgs_per_s = 20000                 # per session; excess orders: THROTTLED
    max_sessions = 64                      # session names per trading day

Without a file, ``load_config(None)`` gives the built-in default: plain text on
loopback (said explicitly by ``plaintext = true``) and a few demo firms, so the
venue starts with no set-up. Firm ids in the engine are the positions in the
firm list. Errors name the field (``ConfigError``). Loading is O(size of file).
"""

from __future__ import annotations

import ipaddress
import re
import struct
import tomllib
from pathlib import Path

import msgspec
import zmq.auth
from zmq.utils import z85

DEFAULT_FIRMS = ("DEMO", "ALPHA", "BETA", "GAMMA", "MM1", "MM2", "LAB1", "LAB2", "PROV1", "PROV2")
DEFAULT_JOURNAL = "state/journal"  # where `make run` journals (relative to the checkout; ignored by git)
_FIRM_NAME = re.compile(r"[A-Z][A-Z0-9_-]{0,31}")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the field."""


class FirmConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    public_key: str = ""  # z85 CURVE public key (or public_key_file)
    public_key_file: str = ""
    max_order_qty: int = 10_000
    max_open_qty: int = 1_000_000
    max_msgs_per_s: int = 50_000
    max_sessions: int = 64  # sessions (names) the firm may have in a trading day; a logon to a new one beyond: refused


class GatewayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    firms: list[FirmConfig]
    order_entry: str = "tcp://127.0.0.1:5555"
    admin: str = "tcp://127.0.0.1:5558"
    market_data: str = "tcp://127.0.0.1:5556"  # feeds: PUB
    snapshots: str = "tcp://127.0.0.1:5557"  # feeds: snapshot service
    plaintext: bool = False
    server_public_key: str = ""  # z85; read from server_secret_key_file when empty
    server_secret_key: str = ""
    server_secret_key_file: str = ""
    heartbeat_ms: int = 1000  # the gateway's own heartbeat interval
    heartbeat_timeout_ms: int = 3000
    time_advance_ms: int = 100  # engine time moves at least this often without order flow
    max_batch: int = 8192  # frames drained into one engine batch
    auction_interval_s: int = 60  # RUN_AUCTION at every multiple of this on the gateway clock (0: no schedule)
    indicative_interval_s: int = 10  # indicative RUN_AUCTION at every multiple of this in between (0: none)
    auction_time_limit_ms: int = 2000  # the winner-determination budget per auction
    auction_gap_ppm: int = 100  # MIP relative gap, parts per million

    def firm_id(self, name: str) -> int | None:
        for i, f in enumerate(self.firms):
            if f.name == name:
                return i
        return None

    @classmethod
    def for_tests(cls, firms=("ALPHA", "BETA", "GAMMA"), plaintext: bool = True, **overrides) -> GatewayConfig:
        """Loopback on free ports ("*": ZeroMQ picks one), plain text unless keys are given."""
        endpoints = dict.fromkeys(("order_entry", "admin", "market_data", "snapshots"), "tcp://127.0.0.1:*")
        return _validated(cls(firms=[f if isinstance(f, FirmConfig) else FirmConfig(f) for f in firms],
                              plaintext=plaintext, **(endpoints | overrides)), "for_tests")


def is_loopback(endpoint: str) -> bool:
    """tcp on 127.0.0.0/8 or ::1, ipc or inproc."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    m = re.fullmatch(r"tcp://\[?([^\]]+?)\]?:(\d+|\*)", endpoint)
    if not m:
        return False
    host = m.group(1)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_key(path: str, field: str, secret: bool) -> tuple[str, str]:
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{field}: cannot read key file {path!r}: {exc}") from exc
    if secret and secret_key is None:
        raise ConfigError(f"{field}: {path!r} holds no secret key")
    return public.decode(), (secret_key or b"").decode()


def _validated(cfg: GatewayConfig, source: str) -> GatewayConfig:
    def err(field: str, text: str) -> ConfigError:
        return ConfigError(f"{source}: {field}: {text}")

    if not cfg.firms:
        raise err("firms", "at least one firm is needed")
    names = set()
    owners: dict[str, str] = {}  # public key -> firm
    firms = []
    for i, f in enumerate(cfg.firms):
        if not _FIRM_NAME.fullmatch(f.name):
            raise err(f"firms[{i}].name", f"{f.name!r} is not an upper-case name of at most 32 characters")
        if f.name in names:
            raise err(f"firms[{i}].name", f"duplicate firm {f.name!r}")
        names.add(f.name)
        for field in ("max_order_qty", "max_open_qty", "max_msgs_per_s", "max_sessions"):
            if getattr(f, field) <= 0:
                raise err(f"firms[{i}].{field}", "must be positive")
        key = f.public_key
        if f.public_key_file:
            key = _read_key(f.public_key_file, f"firms[{i}].public_key_file", secret=False)[0]
        if not cfg.plaintext and len(key) != 40:
            raise err(f"firms[{i}].public_key", "a 40-character z85 CURVE public key is required without plaintext")
        if key and not _is_curve_key(key):
            raise err(f"firms[{i}].public_key", f"{key!r} is not a CURVE public key (40 z85 characters, 32 bytes)")
        if key in owners:
            raise err(f"firms[{i}].public_key", f"the key of {f.name!r} is also {owners[key]!r}'s: each firm needs "
                                                "its own key pair (`cx keys new FIRM`)")
        if key:
            owners[key] = f.name
        firms.append(msgspec.structs.replace(f, public_key=key, public_key_file=""))
    for field in ("order_entry", "admin", "market_data", "snapshots"):
        endpoint = getattr(cfg, field)
        if not re.fullmatch(r"(tcp|ipc|inproc)://\S+", endpoint):
            raise err(field, f"{endpoint!r} is not a ZeroMQ endpoint")
    if cfg.plaintext and not is_loopback(cfg.order_entry):
        raise err("plaintext", f"plain text is allowed only on loopback, not on {cfg.order_entry!r}")
    if not is_loopback(cfg.admin):
        raise err("admin", f"the admin endpoint must be on loopback, not {cfg.admin!r}")
    public, secret = cfg.server_public_key, cfg.server_secret_key
    if cfg.server_secret_key_file:
        public, secret = _read_key(cfg.server_secret_key_file, "server_secret_key_file", secret=True)
    if not cfg.plaintext and (len(public) != 40 or len(secret) != 40):
        raise err("server_secret_key_file", "the gateway's CURVE key pair is required without plaintext")
    if public and public in owners:
        raise err("server_secret_key_file", f"the gateway's public key is also {owners[public]!r}'s")
    for field in ("heartbeat_ms", "heartbeat_timeout_ms", "time_advance_ms", "max_batch", "auction_time_limit_ms"):
        if getattr(cfg, field) <= 0:
            raise err(field, "must be positive")
    for field in ("auction_interval_s", "indicative_interval_s", "auction_gap_ppm"):
        if getattr(cfg, field) < 0:
            raise err(field, "must not be negative")
    return msgspec.structs.replace(cfg, firms=firms, server_public_key=public, server_secret_key=secret,
                                   server_secret_key_file="")


def _is_curve_key(key: str) -> bool:
    """40 characters of z85 that decode to a 32-byte key."""
    try:
        return len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError, struct.error):
        return False


def load_config(path: str | Path | None) -> GatewayConfig:
    """The gateway configuration in a TOML file, or the built-in default (None)."""
    if path is None:
        return _validated(GatewayConfig(firms=[FirmConfig(name) for name in DEFAULT_FIRMS], plaintext=True),
                          "built-in default")
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    unknown = set(data) - {"gateway", "firms"}
    if unknown:
        raise ConfigError(f"{source}: unknown table(s) {sorted(unknown)}")
    try:
        cfg = msgspec.convert({**data.get("gateway", {}), "firms": data.get("firms", [])}, GatewayConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return _validated(cfg, source)
