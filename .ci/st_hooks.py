"""Schemathesis hooks for Haven (loaded through SCHEMATHESIS_HOOKS by .ci/schemathesis.sh).

The OpenAPI document states every rule a JSON Schema can hold. A few rules span fields or depend
on today's date, which no schema can express; the document names them in its 400 description
("a date in the past, checkOut before checkIn, maxStay below minStay"). So that Schemathesis does
not count a correct refusal of those as "a valid request rejected", this hook moves generated stay
dates into the future and in order, and orders minStay/maxStay. Values that are not dates or whole
numbers are left alone, so negative cases still reach the server as generated.
"""

import datetime
import zlib

import schemathesis

DATE_PAIRS = (("checkIn", "checkOut"),)
ORDERED_INTS = (("minStay", "maxStay"),)


def _date(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _fix(container):
    if not isinstance(container, dict):
        return
    for start, end in DATE_PAIRS:
        first, last = _date(container.get(start)), _date(container.get(end))
        if first is None:
            continue
        # A stable day 30–230 days ahead (inside every listing's default booking window).
        ahead = 30 + zlib.crc32(str(container.get(start)).encode()) % 200
        moved = datetime.date.today() + datetime.timedelta(days=ahead)
        container[start] = moved.isoformat()
        if last is not None:
            nights = max(1, min((last - first).days, 14)) if last > first else 1
            container[end] = (moved + datetime.timedelta(days=nights)).isoformat()
    for low, high in ORDERED_INTS:
        a, b = container.get(low), container.get(high)
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and b < a:
            container[low], container[high] = b, a


@schemathesis.hook
def map_case(context, case):
    _fix(case.query)
    _fix(case.body)
    return case
