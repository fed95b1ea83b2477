"""Schemathesis hooks for Haven (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh).

The OpenAPI document states every rule a JSON Schema can hold. A few rules span fields or depend
on today's date, which no schema can express; the document names them in its 400 description
("a date in the past, checkOut before checkIn or without it, maxStay below minStay"). So that
Schemathesis does not count a correct refusal of those as "a valid request rejected", this hook
moves generated stay dates into the future and in order, and orders minStay/maxStay,
minPrice/maxPrice and the booking window, and leaves a new listing's amenityIds empty (ids of
records that must exist), just before each request. Values that are not dates or
numbers are left alone; Schemathesis re-judges each case from what is actually sent.
"""

import datetime
import json as _json
import zlib

import schemathesis

try:  # CPython 3.11.2 (Debian 12) can raise SystemError "AST constructor recursion depth
    # mismatch" when Hypothesis parses a large module to describe a lambda in a worker thread
    # (fixed upstream in 3.11.5). The description is cosmetic: fall back to a placeholder.
    from hypothesis.internal import lambda_sources as _lambda_sources

    _describe = _lambda_sources._lambda_description

    def _safe_description(f, *args, **kwargs):
        try:
            return _describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    _lambda_sources._lambda_description = _safe_description
except (ImportError, AttributeError):
    pass

DATE_PAIRS = (("checkIn", "checkOut"), ("date", "endDate"), ("from", "to"))
ORDERED_NUMBERS = (("minStay", "maxStay"), ("minAdvanceDays", "maxAdvanceDays"), ("minPrice", "maxPrice"))


def _date(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _number(value):
    """A number, or the number a query string value spells; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _fix(container, declares):
    if isinstance(container, list):
        for item in container:
            _fix(item, declares)
        return
    if not isinstance(container, dict):
        return
    for value in container.values():
        _fix(value, declares)
    for start, end in DATE_PAIRS:
        first, last = _date(container.get(start)), _date(container.get(end))
        # The two go together: supply the missing one (only when it is absent or null).
        if first is None and last is not None and container.get(start) is None and declares(start):
            first = last - datetime.timedelta(days=1)
        if first is None:
            continue
        if last is None and container.get(end) is None and declares(end):
            last = first + datetime.timedelta(days=1)
        # A stable day 30–230 days ahead (inside every listing's default booking window).
        ahead = 30 + zlib.crc32(first.isoformat().encode()) % 200
        moved = datetime.date.today() + datetime.timedelta(days=ahead)
        container[start] = moved.isoformat()
        if last is not None:
            nights = max(1, min((last - first).days, 14)) if last > first else 1
            container[end] = (moved + datetime.timedelta(days=nights)).isoformat()
    for low, high in ORDERED_NUMBERS:
        a, b = _number(container.get(low)), _number(container.get(high))
        if a is not None and b is not None and b < a:
            container[low], container[high] = container[high], container[low]
    # Ids of other records must exist (no schema can say so): a listing's amenities are left out.
    if isinstance(container.get("amenityIds"), list) and declares("approvalType"):
        container["amenityIds"] = []


def _declares(case, name):
    """Whether the operation takes a parameter or body field called `name`."""
    raw = case.operation.definition.raw
    return f'"{name}"' in _json.dumps(raw.get("parameters", [])) + _json.dumps(raw.get("requestBody", {}))


@schemathesis.hook
def before_call(context, case, kwargs):
    # Just before sending, in every phase (stateful steps included); Schemathesis re-judges the
    # case (positive or negative) from the values actually sent.
    def declares(name):
        return _declares(case, name)

    _fix(case.query, declares)
    _fix(case.body, declares)
