"""Schemathesis hooks for the CAMARA contract test (loaded through SCHEMATHESIS_HOOKS by
contract.py; see README.md beside this file).

Two things, neither of which loosens a check:

1. `before_load_schema` states in JSON Schema what the specs' OpenAPI discriminators already
   mean. CAMARA's `Area` is a base schema with `discriminator.mapping` (`CIRCLE` -> `Circle`,
   and in location retrieval `POLYGON` -> `Polygon`), the allOf-inheritance pattern of OpenAPI
   3.0.3 §4.7.24: a payload whose `areaType` is `CIRCLE` *is* a `Circle` and must have `center`
   and `radius`. JSON Schema ignores `discriminator`, and schemathesis only pins discriminators
   of oneOf/anyOf schemas, so without this it would call `{"areaType": "CIRCLE"}` a valid area
   and expect a correct server to accept it. Each use of `Area` outside the subtypes' own allOf
   becomes a oneOf of the mapped subtypes: what the discriminator selects, nothing more or less
   (for a response this is stricter than the bare `Area`). The files on disk stay verbatim.

2. `map_case` makes positive cases find real devices, apps and areas often: most positive cases
   with a `device` get one of the feed's devices (CAMARA_FEED, the DME's device-location feed),
   half of those with an `appId` get a known app (CAMARA_APP_IDS), and a location verification
   of a known device often gets a circle around that device's feed location (containing it,
   overlapping it, or near but disjoint), so TRUE, PARTIAL and FALSE answers all occur. Only
   positive cases are touched, and only with values the schema allows, so a positive case stays
   positive (schemathesis re-validates a mapped case anyway); the choice is a function of the
   generated body, so replays and shrinking see the same case.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import urllib.parse
import zlib

import schemathesis

# --- 1. discriminators ---------------------------------------------------------------------


def _schema_name(ref: str) -> str | None:
    prefix = "#/components/schemas/"
    return ref[len(prefix) :] if ref.startswith(prefix) else None


def _discriminated_bases(schemas: dict) -> dict[str, dict[str, str]]:
    """Base schemas with a discriminator mapping and no oneOf/anyOf of their own, with their
    mapping (discriminator value -> subtype schema name)."""
    bases = {}
    for name, schema in schemas.items():
        if not isinstance(schema, dict) or "oneOf" in schema or "anyOf" in schema:
            continue
        mapping = (schema.get("discriminator") or {}).get("mapping") or {}
        targets = {value: _schema_name(ref) for value, ref in mapping.items()}
        if targets and all(targets.values()):
            bases[name] = targets
    return bases


def _selected(base: dict, targets: dict[str, str]) -> dict:
    """What a use of a discriminated base means: one of the mapped subtypes, each with the
    discriminator property pinned to the value that names it."""
    prop = base["discriminator"]["propertyName"]
    return {
        "oneOf": [
            {"allOf": [{"$ref": f"#/components/schemas/{name}"}, {"properties": {prop: {"enum": [value]}}}]}
            for value, name in targets.items()
        ]
    }


def _rewrite_uses(node, schemas: dict, bases: dict[str, dict[str, str]]):
    """`node` with every `{"$ref": base}` replaced by `_selected`."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            base = _schema_name(node["$ref"])
            if base in bases:
                return _selected(schemas[base], bases[base])
        return {key: _rewrite_uses(value, schemas, bases) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite_uses(value, schemas, bases) for value in node]
    return node


@schemathesis.hook
def before_load_schema(context, raw_schema: dict) -> None:
    schemas = (raw_schema.get("components") or {}).get("schemas") or {}
    bases = _discriminated_bases(schemas)
    if not bases:
        return
    subtypes = {name for targets in bases.values() for name in targets.values()}
    for name, schema in list(schemas.items()):
        if name in bases:
            continue  # the base itself stays what it is
        if name in subtypes and isinstance(schema, dict) and isinstance(schema.get("allOf"), list):
            # The subtype's own `allOf: [{$ref: Base}, ...]` is the inheritance: kept as is.
            schemas[name] = {
                **{k: _rewrite_uses(v, schemas, bases) for k, v in schema.items() if k != "allOf"},
                "allOf": [
                    item
                    if isinstance(item, dict) and set(item) == {"$ref"} and _schema_name(item["$ref"]) in bases
                    else _rewrite_uses(item, schemas, bases)
                    for item in schema["allOf"]
                ],
            }
        else:
            schemas[name] = _rewrite_uses(schema, schemas, bases)
    for section in ("paths", "webhooks"):
        if section in raw_schema:
            raw_schema[section] = _rewrite_uses(raw_schema[section], schemas, bases)
    components = raw_schema.get("components") or {}
    for section in list(components):
        if section != "schemas":
            components[section] = _rewrite_uses(components[section], schemas, bases)


def _demands_properties(schema, schemas: dict, depth: int = 0) -> bool:
    """Whether every value the schema accepts is an object with some required property."""
    if not isinstance(schema, dict) or depth > 10:
        return False
    if set(schema) >= {"$ref"}:
        return _demands_properties(schemas.get(_schema_name(schema["$ref"]) or "", {}), schemas, depth + 1)
    if schema.get("required"):
        return True
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list) and branches and all(_demands_properties(b, schemas, depth + 1) for b in branches):
            return True
    return any(_demands_properties(b, schemas, depth + 1) for b in schema.get("allOf") or [])


@schemathesis.hook("before_load_schema")
def body_required_when_its_schema_requires_properties(context, raw_schema: dict) -> None:
    """A request body whose schema requires properties is required.

    Application endpoint discovery 0.1.0 leaves `requestBody.required` at its default (false),
    yet its schema `EndpointDiscoveryInfo` demands `anyOf: [{required: [applicationEndpointsId]},
    {required: [appId]}]`: the request names the application whose endpoints it wants, and a
    request without a body names none, so no server can answer it with endpoints. Left as
    written, schemathesis sends such a request as valid and expects it accepted; marked required,
    it is sent as invalid and must be rejected (400), which is what CAMARA's "INVALID_ARGUMENT:
    Client specified an invalid argument, request body or query param" is for.
    """
    schemas = (raw_schema.get("components") or {}).get("schemas") or {}
    for item in (raw_schema.get("paths") or {}).values():
        for op in item.values():
            body = op.get("requestBody") if isinstance(op, dict) else None
            if not isinstance(body, dict) or body.get("required") or "$ref" in body:
                continue
            media = (body.get("content") or {}).values()
            if media and all(_demands_properties(m.get("schema"), schemas) for m in media):
                body["required"] = True


# --- 2. known devices ----------------------------------------------------------------------


def _load_feed(path: str | None) -> tuple[dict[str, tuple], list[tuple]]:
    """Phones (number -> (lat, lon, radius)) and IP prefixes ([(network, lat, lon, radius)])."""
    phones: dict[str, tuple] = {}
    prefixes: list[tuple] = []
    if not path:
        return phones, prefixes
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) != 5:
                continue
            kind, ident, lat, lon, radius = fields
            where = (float(lat), float(lon), float(radius))
            if kind == "phone":
                phones[ident] = where
            elif kind == "ip":
                prefixes.append((ipaddress.ip_network(ident, strict=False), *where))
    return phones, prefixes


PHONES, PREFIXES = _load_feed(os.environ.get("CAMARA_FEED"))
APP_IDS = [a for a in os.environ.get("CAMARA_APP_IDS", "").split(",") if a]


def _known_devices() -> list[dict]:
    """One schema-valid `device` per feed entry, identified the way the entry is keyed."""
    devices = [{"phoneNumber": phone} for phone in PHONES]
    for net, *_ in PREFIXES:
        host = str(net.network_address + min(7, net.num_addresses - 1))
        if net.version == 4:
            devices.append({"ipv4Address": {"publicAddress": host, "publicPort": 40000}})
            devices.append({"ipv4Address": {"publicAddress": host, "privateAddress": "10.0.0.7"}})
        else:
            devices.append({"ipv6Address": host})
    return devices


KNOWN_DEVICES = _known_devices()


def _pick(case_body, salt: str) -> int:
    """A number derived from the generated body alone (not from Python's per-process hash), so
    a case maps the same way when hypothesis replays or shrinks it."""
    return zlib.crc32((salt + json.dumps(case_body, sort_keys=True, default=str)).encode())


def _device_location(device) -> tuple | None:
    if not isinstance(device, dict):
        return None
    phone = device.get("phoneNumber")
    if isinstance(phone, str) and phone in PHONES:
        return PHONES[phone]
    addresses = []
    v4 = device.get("ipv4Address")
    if isinstance(v4, dict):
        addresses.append(v4.get("publicAddress"))
    addresses.append(device.get("ipv6Address"))
    for text in addresses:
        try:
            addr = ipaddress.ip_address(text)
        except (TypeError, ValueError):
            continue
        for net, *where in PREFIXES:
            if addr.version == net.version and addr in net:
                return tuple(where)
    return None


def _offset(lat: float, lon: float, metres: float) -> tuple[float, float]:
    """A point `metres` east of (lat, lon), clamped to the valid range."""
    dlon = metres / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
    return lat, max(-180.0, min(180.0, lon + dlon))


def _area_near(area: dict, where: tuple, n: int) -> dict:
    """The generated circle moved around the device's feed location: containing it, overlapping
    it, near but disjoint, or left as generated (almost always far away)."""
    lat, lon, accuracy = where
    choice = n % 4
    if choice == 0:
        return area
    if choice == 1:
        center, radius = (lat, lon), accuracy * 2 + 1000
    elif choice == 2:
        center, radius = _offset(lat, lon, accuracy), max(accuracy, 1.0)
    else:
        center, radius = _offset(lat, lon, accuracy * 3 + 2000), max(accuracy / 2, 1.0)
    return {**area, "center": {"latitude": center[0], "longitude": center[1]}, "radius": float(radius)}


@schemathesis.hook
def map_case(context, case):
    """Positive cases: about two in three get a known device instead of the generated one (if
    they have a `device`), half get a known appId (if they have an `appId`), and a location
    verification of a known device often gets an area around it."""
    meta = case.meta
    body = case.body
    if meta is None or not meta.generation.mode.is_positive or not isinstance(body, dict):
        return case
    body = dict(body)
    if isinstance(body.get("device"), dict) and KNOWN_DEVICES:
        if _pick(body, "device") % 3:
            body["device"] = KNOWN_DEVICES[_pick(body, "which device") % len(KNOWN_DEVICES)]
    if isinstance(body.get("appId"), str) and APP_IDS:
        if _pick(body, "appId") % 2:
            body["appId"] = APP_IDS[_pick(body, "which appId") % len(APP_IDS)]
    # EAM createAppInstance: half the positive cases leave out the optional status callback and
    # cluster, which the MC answers 501 NOT_IMPLEMENTED (documented) and 400 (no such cluster),
    # so that a request naming the known app and zone (the --known dictionaries) creates an
    # instance now and then.
    op = case.operation
    if op.method.upper() == "POST" and op.path == "/appinstances" and _pick(body, "optional") % 2:
        body.pop("subscriptionRequest", None)
        body.pop("kubernetesClusterRef", None)
    area = body.get("area")
    where = _device_location(body.get("device"))
    if where is not None and isinstance(area, dict) and area.get("areaType") == "CIRCLE" and "center" in area:
        body["area"] = _area_near(area, where, _pick(body, "area"))
    if body != case.body:
        case.body = body
    return case


# --- 3. what was sent ----------------------------------------------------------------------

STATS_PATH = os.environ.get("CAMARA_STATS")
STATS: dict[str, dict[str, int]] = {}


@schemathesis.hook
def after_call(context, case, response) -> None:
    """Counts, per operation, the positive and negative cases sent and the statuses answered, in
    CAMARA_STATS (JSON), for contract.py to check that every operation was exercised both ways."""
    if not STATS_PATH:
        return
    meta = case.meta
    mode = str(meta.generation.mode) if meta is not None else "unknown"
    counts = STATS.setdefault(case.operation.label, {})
    status = str(response.status_code)
    if response.status_code >= 400:
        try:
            code = response.json().get("code")
        except Exception:
            code = None
        status += f" {code}" if isinstance(code, str) else ""
    for key in (mode, f"{mode} {status}"):
        counts[key] = counts.get(key, 0) + 1
    with open(STATS_PATH, "w", encoding="utf-8") as f:
        json.dump(STATS, f, indent=1, sort_keys=True)
    # Every request and answer, for a person looking into a run.
    _trace(lambda: {
        "mode": mode,
        "operation": case.operation.label,
        "path_parameters": case.path_parameters,
        "query": case.query,
        "body": case.body if isinstance(case.body, (dict, list, str, int, float, bool, type(None))) else repr(case.body),
        "status": response.status_code,
        "response": response.text[:500],
    })


def _trace(line) -> None:
    """CAMARA_TRACE=FILE (for a person looking into a run): appends `line()` to FILE as a JSON
    line; `line` is only called when tracing."""
    path = os.environ.get("CAMARA_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line(), default=str) + "\n")


# --- 4. spec defects -------------------------------------------------------------------------


def _exists(path: str) -> bool:
    """Whether GET BASE_URL+path answers 200 with the run's token (CAMARA_BASE_URL, CAMARA_TOKEN,
    CAMARA_TLS_VERIFY as contract.py sets them)."""
    import requests

    verify = os.environ.get("CAMARA_TLS_VERIFY") or True
    r = requests.get(
        os.environ["CAMARA_BASE_URL"].rstrip("/") + path,
        headers={"Authorization": f"Bearer {os.environ['CAMARA_TOKEN']}"},
        verify=verify,
        timeout=10,
    )
    return r.status_code == 200


def _zone_exists(zone_id: str) -> bool:
    import requests

    verify = os.environ.get("CAMARA_TLS_VERIFY") or True
    r = requests.get(
        os.environ["CAMARA_BASE_URL"].rstrip("/") + "/edge-cloud-zones",
        headers={"Authorization": f"Bearer {os.environ['CAMARA_TOKEN']}"},
        verify=verify,
        timeout=10,
    )
    return r.status_code == 200 and any(z.get("edgeCloudZoneId") == zone_id for z in r.json())


def _error_code(response) -> str | None:
    try:
        body = response.json()
    except Exception:
        return None
    return body.get("code") if isinstance(body, dict) else None


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Drops the failures that no server can avoid because the spec contradicts itself or cannot
    say what exists; each is matched exactly (operation, status, body, what was violated), so
    anything else about the same response still fails.

    1. EAM 0.1.0-alpha.1 GET /edge-cloud-zones: its 200 body is `EdgeCloudZones`, `minItems: 1`,
       while the operation filters by `region` and `status` and documents no status for "no zone
       matches" (200, 400, 401, 403, 500, 503). A filter that matches nothing can only be
       answered `200 []` (the list is empty, the request was fine), which breaks `minItems`.

    2. EAM createAppInstance (POST /appinstances) names an app and a zone by id. A schema-valid
       request whose `appId` or `edgeCloudZoneId` names nothing cannot be carried out, and of the
       statuses the operation documents (202, 400, 401, 403, 409, 500, 501, 503; EAM does not say
       its list is open) the one that fits is 400 INVALID_ARGUMENT ("Client specified an invalid
       argument, request body or query param"). Schemathesis cannot know which ids exist, so its
       positive_data_acceptance would call that 400 a refusal of valid data: dropped only when
       the response is 400 INVALID_ARGUMENT and the server, asked right then with the same token,
       indeed has no such app (GET /apps/{appId} not 200) or no such zone (not in GET
       /edge-cloud-zones).
    """
    op = case.operation
    method, code = op.method.upper(), getattr(failure, "code", None)
    if (
        method == "GET"
        and op.path == "/edge-cloud-zones"
        and code == "ST108"
        and response.status_code == 200
        and list(getattr(failure, "schema_path", []))[-1:] == ["minItems"]
    ):
        try:
            empty = response.json() == []
        except Exception:
            empty = False
        return not empty
    if (
        method == "POST"
        and op.path == "/appinstances"
        and code == "ST202"
        and response.status_code == 400
        and _error_code(response) == "INVALID_ARGUMENT"
        and isinstance(case.body, dict)
    ):
        app, zone = case.body.get("appId"), case.body.get("edgeCloudZoneId")
        names_nothing = (isinstance(app, str) and not _exists("/apps/" + urllib.parse.quote(app, safe=""))) or (
            isinstance(zone, str) and not _zone_exists(zone)
        )
        return not names_nothing
    return True


@schemathesis.hook
def after_network_error(context, case, request) -> None:
    """With CAMARA_TRACE: the request that got no answer at all (the connection closed, reset or
    timed out), as sent."""
    _trace(lambda: {
        "network_error": True,
        "operation": case.operation.label,
        "method": request.method,
        "url": request.url,
        "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
        "body": request.body.decode("utf-8", "backslashreplace") if isinstance(request.body, bytes) else request.body,
    })
