"""Lean online reads: a feature service's rows straight from Feast's online store.

``FeatureStore.get_online_features`` re-resolves the service, builds protobuf responses and
converts every value on each call; serving wants well under a millisecond per flight. This
reader resolves the service's views once, then reads Feast's own online layout (SQLite tables
``<project>_<view>``, or one Redis hash per entity key) with Feast's key encoders, so it sees
exactly what ``materialize`` wrote, and decodes whole columns at once. A test pins it to
``get_online_features`` on both stores. A connection that breaks mid-request is retried once,
the whole request, on a fresh connection; a second break raises: no row mixes two attempts or
serves part of a reply.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import feast
    import numpy as np

_DOUBLE = 0x29  # Value.double_val (field 5, fixed64)
_STRING = 0x12  # Value.string_val (field 2, length-delimited)
_UNPACK_DOUBLE = struct.Struct("<d").unpack_from


@dataclass(frozen=True)
class ViewSpec:
    """One feature view of the service: its name, join keys and the features served from it."""

    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]


@dataclass(frozen=True)
class OnlineBatch:
    """Features of N entity rows as columns, each row's newest event time and missing views."""

    columns: dict[str, Any]
    event_ts: list[dt.datetime | None]
    missing_views: list[tuple[str, ...]]

    def row(self, i: int) -> dict[str, Any]:
        return {name: column[i] for name, column in self.columns.items()}


# Per view: raw value columns (feature -> one bytes-or-None per key) and one event time per key.
Raw = tuple[dict[str, list[bytes | None]], list[dt.datetime | None]]
# Views sharing join keys, and the (distinct, encoded) keys to read for them.
Group = tuple[list[ViewSpec], list[bytes]]


class _Backend(Protocol):
    def read(self, groups: list[Group]) -> list[list[Raw]]:
        """Per group, per view: the raw columns and event times of the group's keys (one round
        trip for all groups where the store allows it)."""

    def recover(self, exc: BaseException) -> bool:
        """After a failed read: True when ``exc`` broke a connection, now dropped, so one retry
        on a fresh connection may succeed."""


def decode_value(raw: bytes | None) -> Any:
    """A serialized ``feast.types.Value`` as a Python value (fast paths for doubles and strings)."""
    if not raw:
        return None
    head = raw[0]
    if head == _DOUBLE and len(raw) == 9:
        return _UNPACK_DOUBLE(raw, 1)[0]
    if head == _STRING and len(raw) == raw[1] + 2 and raw[1] < 0x80:
        return raw[2:].decode()
    from feast.protos.feast.types.Value_pb2 import Value

    value = Value.FromString(raw)
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    found = getattr(value, kind)
    return list(found.val) if kind.endswith("_list_val") else found


def decode_column(raw: list[bytes | None]) -> np.ndarray | list[Any]:
    """A column of serialized values: float64 array when all are doubles, else Python values
    (one value, as serving reads: a list, cheaper than an array)."""
    import numpy as np

    if len(raw) == 1:
        return [decode_value(raw[0])]
    if raw and all(v is not None and len(v) == 9 and v[0] == _DOUBLE for v in raw):
        record = np.dtype([("tag", "u1"), ("value", "<f8")])
        return np.frombuffer(b"".join(raw), dtype=record)["value"].copy()
    return [decode_value(v) for v in raw]


class OnlineFeatureReader:
    """Reads a feature service for many entity rows: one query per view, or one pipelined HMGET."""

    def __init__(
        self,
        views: list[ViewSpec],
        backend: _Backend,
        key_encoder: Any,
        key_sources: dict[str, str] | None = None,
    ) -> None:
        self.views = views
        self._backend = backend
        self._encode = key_encoder
        self._key_sources = key_sources or {}
        self._groups: dict[tuple[str, ...], list[ViewSpec]] = {}
        self.retries = 0  # requests retried after a broken connection
        for view in views:
            self._groups.setdefault(view.join_keys, []).append(view)

    @classmethod
    def for_service(
        cls,
        store: feast.FeatureStore,
        service_name: str,
        key_sources: dict[str, str] | None = None,
    ) -> OnlineFeatureReader:
        """Resolve ``service_name``'s views from the registry and connect to the online store.

        ``key_sources`` names join keys that a served feature provides (``plane_id`` from the
        flight's ``tailnum``) when the entity row does not carry them.
        """
        views = service_views(store, service_name)
        config = store.config
        kind = config.online_store.type
        if kind == "sqlite":
            backend: _Backend = _SqliteBackend(config.online_store.path, config.project)
        elif kind == "redis":
            backend = _RedisBackend(config.online_store, config.project)
        else:
            raise ValueError(f"no lean online reader for online store type {kind!r}")
        encoder = entity_key_encoder(config.entity_key_serialization_version)
        return cls(views, backend, encoder, key_sources)

    def read(self, entity_rows: list[dict[str, Any]]) -> OnlineBatch:
        """Every service feature for each entity row (keyed by the views' join keys).

        A broken connection (reset, reply cut short) retries the whole request once on a fresh
        connection; a second failure raises (the resource makes it a ``FeatureStoreError``).
        """
        try:
            return self._read(entity_rows)
        except Exception as exc:
            if not self._backend.recover(exc):
                raise
            self.retries += 1
        return self._read(entity_rows)

    def _read(self, entity_rows: list[dict[str, Any]]) -> OnlineBatch:
        """One attempt: views whose join keys the rows carry first, the others once a served
        feature has provided their key (``key_sources``)."""
        n = len(entity_rows)
        columns: dict[str, Any] = {}
        stamps: list[list[dt.datetime]] = [[] for _ in range(n)]
        missing: list[list[str]] = [[] for _ in range(n)]
        given = set.intersection(*(set(r) for r in entity_rows)) if entity_rows else set()
        pending = dict(self._groups)
        while pending:
            ready = [k for k in pending if all(self._has(key, given, columns) for key in k)]
            if not ready:
                wanted = sorted({key for k in pending for key in k} - given)
                raise KeyError(f"entity rows lack join keys {wanted} (given: {sorted(given)})")
            groups, spreads = [], []
            for join_keys in ready:
                views = pending.pop(join_keys)
                slot: dict[tuple[Any, ...], int] = {}  # each distinct key is read once
                at = [
                    slot.setdefault(self._key_values(join_keys, entity_rows, columns, i), len(slot))
                    for i in range(n)
                ]
                groups.append((views, [self._encode(join_keys, values) for values in slot]))
                spreads.append(at)
            for (views, keys), at, read in zip(
                groups, spreads, self._backend.read(groups), strict=True
            ):
                for view, (raw, event_ts) in zip(views, read, strict=True):
                    for feature in view.features:
                        columns[feature] = _take(decode_column(raw[feature]), at, len(keys))
                    for i, j in enumerate(at):
                        stamp = event_ts[j]
                        if stamp is None:
                            missing[i].append(view.name)
                        else:
                            stamps[i].append(stamp)
        return OnlineBatch(
            columns=columns,
            event_ts=[max(s) if s else None for s in stamps],
            missing_views=[tuple(m) for m in missing],
        )

    def _has(self, key: str, given: set[str], columns: dict[str, Any]) -> bool:
        return key in given or self._key_sources.get(key) in columns

    def _key_values(
        self, join_keys: tuple[str, ...], rows: list[dict[str, Any]], columns: dict, i: int
    ) -> tuple[Any, ...]:
        """Row ``i``'s values of ``join_keys``, from the entity row or the feature providing it."""
        row = rows[i]
        out = []
        for key in join_keys:
            if key in row:
                out.append(row[key])
            else:
                value = columns[self._key_sources[key]][i]
                out.append("" if value is None else value)
        return tuple(out)


def service_views(store: feast.FeatureStore, service_name: str) -> list[ViewSpec]:
    """The views of a feature service as the registry holds them (join keys, served features)."""
    service = store.get_feature_service(service_name)
    views = []
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        views.append(
            ViewSpec(
                name=projection.name_to_use(),
                join_keys=tuple(view.join_keys),
                features=tuple(f.name for f in projection.features),
            )
        )
    return views


def _take(column: Any, at: list[int], distinct: int) -> Any:
    """Spread a column read for the distinct keys back to every entity row."""
    if distinct == len(at):
        return column
    if isinstance(column, list):
        return [column[j] for j in at]
    return column[at]


def entity_key_encoder(version: int) -> Any:
    """Feast's entity key serialization for string keys (``serialize_entity_key``, version 3),
    with the join-key header built once per view; a test pins it to Feast's own function."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value, ValueType

    string = int(ValueType.STRING)
    headers: dict[tuple[str, ...], tuple[bytes, list[int]]] = {}

    def header(join_keys: tuple[str, ...]) -> tuple[bytes, list[int]]:
        order = sorted(range(len(join_keys)), key=lambda i: join_keys[i])
        parts = [struct.pack("<I", len(join_keys))]
        for i in order:
            name = join_keys[i].encode()
            parts.append(struct.pack("<II", string, len(name)) + name)
        return b"".join(parts), order

    def encode(join_keys: tuple[str, ...], values: tuple[Any, ...]) -> bytes:
        if version != 3:
            key = EntityKey(
                join_keys=list(join_keys), entity_values=[Value(string_val=str(v)) for v in values]
            )
            return serialize_entity_key(key, entity_key_serialization_version=version)
        found = headers.get(join_keys)
        if found is None:
            found = headers[join_keys] = header(join_keys)
        head, order = found
        out = [head]
        for i in order:
            value = str(values[i]).encode()
            out.append(struct.pack("<II", string, len(value)) + value)
        return b"".join(out)

    return encode


class _SqliteBackend:
    """Feast's SQLite layout: table ``<project>_<view>``, one row per (entity key, feature)."""

    def __init__(self, path: str, project: str) -> None:
        import sqlite3

        self._connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False
        )
        self._project = project

    def read(self, groups: list[Group]) -> list[list[Raw]]:
        return [
            [
                _concat(
                    [self._read_view(v, keys[i : i + _CHUNK]) for i in range(0, len(keys), _CHUNK)]
                )
                for v in views
            ]
            for views, keys in groups
        ]

    def _read_view(self, view: ViewSpec, keys: list[bytes]) -> Raw:
        """One indexed ``IN`` lookup; the reader passes each key once."""
        slot = {key: i for i, key in enumerate(keys)}
        rows = self._connection.execute(
            f"SELECT entity_key, feature_name, value, event_ts FROM "
            f'"{self._project}_{view.name}" WHERE entity_key IN ({",".join("?" * len(keys))})',
            keys,
        ).fetchall()
        raw: dict[str, list[bytes | None]] = {f: [None] * len(keys) for f in view.features}
        event_ts: list[Any] = [None] * len(keys)
        for key, feature, value, stamp in rows:
            column = raw.get(feature)
            if column is not None:
                i = slot[key]
                column[i] = value
                event_ts[i] = stamp
        parsed = {s: parse_sqlite_ts(s) for s in set(event_ts)}
        return raw, [parsed[s] for s in event_ts]

    def recover(self, exc: BaseException) -> bool:
        return False  # a local file: nothing to reconnect


_CHUNK = 10000  # keys per statement, well under SQLite's bound-variable limit


def _concat(parts: list[Raw]) -> Raw:
    if len(parts) == 1:
        return parts[0]
    raw = {f: [v for part in parts for v in part[0][f]] for f in parts[0][0]}
    return raw, [t for part in parts for t in part[1]]


def parse_sqlite_ts(stamp: float | str | None) -> dt.datetime | None:
    """Feast stores epoch seconds (older versions: ISO text)."""
    if stamp is None:
        return None
    if isinstance(stamp, int | float):
        return dt.datetime.fromtimestamp(stamp, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(stamp)
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


class _RedisBackend:
    """Feast's Redis layout: one hash per entity key + project, fields mmh3(view:feature)."""

    def __init__(self, store_config: Any, project: str) -> None:
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import RedisOnlineStore
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._client = RedisOnlineStore()._get_client(store_config)  # Feast's own client set-up
        # Serving retries once itself (``recover``): redis-py's own 3 retries with seconds of
        # backoff would hold a request far past its latency budget.
        self._client.set_retry(Retry(NoBackoff(), 0))
        self._suffix = project.encode()
        self._hash = _mmh3
        self._view_fields: dict[str, list[bytes]] = {}

    def read(self, groups: list[Group]) -> list[list[Raw]]:
        """One HMGET per entity for all of its views (Feast keeps them in one hash), every group's
        in one pipeline: one round trip."""
        commands = []
        for views, keys in groups:
            fields = [f for view in views for f in self._fields(view)]
            commands += [(key + self._suffix, fields) for key in keys]
        if len(commands) == 1:
            replies = [self._client.hmget(*commands[0])]
        else:
            with self._client.pipeline(transaction=False) as pipe:
                for key, fields in commands:
                    pipe.hmget(key, fields)
                replies = pipe.execute()
        _check_complete(replies, [len(fields) for _, fields in commands])
        out, start = [], 0
        for views, keys in groups:
            out.append(self._split(views, replies[start : start + len(keys)]))
            start += len(keys)
        return out

    def _split(self, views: list[ViewSpec], replies: list[list[bytes | None]]) -> list[Raw]:
        """A group's HMGET replies cut back into its views' raw columns and event times."""
        out: list[Raw] = []
        start = 0
        for view in views:
            raw = {f: [r[start + j] for r in replies] for j, f in enumerate(view.features)}
            end = start + len(view.features)
            stamps: dict[bytes | None, dt.datetime | None] = {}
            for r in replies:
                if r[end] not in stamps:
                    stamps[r[end]] = parse_redis_ts(r[end])
            out.append((raw, [stamps[r[end]] for r in replies]))
            start = end + 1
        return out

    def recover(self, exc: BaseException) -> bool:
        """A reset, a timeout or a reply cut short (redis-py raises for any of them and drops that
        connection); idle pooled connections are dropped too, so the retry connects afresh.
        A refused login is no connection fault."""
        import redis

        if isinstance(exc, redis.AuthenticationError) or not isinstance(
            exc, redis.ConnectionError | redis.TimeoutError
        ):
            return False
        pool = getattr(self._client, "connection_pool", None)  # a cluster has one per node
        if pool is not None:
            pool.disconnect(inuse_connections=False)
        return True

    def _fields(self, view: ViewSpec) -> list[bytes]:
        """The view's hash fields: mmh3("<view>:<feature>") per feature, then "_ts:<view>"."""
        fields = self._view_fields.get(view.name)
        if fields is None:
            fields = [self._hash(f"{view.name}:{f}") for f in view.features]
            fields.append(f"_ts:{view.name}".encode())
            self._view_fields[view.name] = fields
        return fields


def _check_complete(replies: list[Any], fields: list[int]) -> None:
    """Every command answered with every field asked, or the read fails (as a broken connection
    would): a short reply never becomes a row."""
    if len(replies) != len(fields) or any(
        r is None or len(r) != n for r, n in zip(replies, fields, strict=True)
    ):
        import redis

        raise redis.ConnectionError(f"incomplete reply: {len(replies)} of {len(fields)} commands")


def parse_redis_ts(raw: bytes | None) -> dt.datetime | None:
    if not raw:
        return None
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp.FromString(raw)
    return dt.datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, tz=dt.UTC)
