"""POST /data under hostile bodies: nesting of any depth and shape, arbitrary bytes.

A body nested deeper than 32 levels is 400 too_deep however deep (up to 100,000 levels here,
far beyond the interpreter's recursion limit), whatever mix of objects and arrays, spacing
and strings holding brackets or escaped quotes; and no body of any shape gets a 5xx. The
service runs with a 4 MiB body limit so that the deepest bodies reach the parser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from conftest import Mongo, service_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import WRITER, Gunicorn

MAX_BODY = 4 * 1024 * 1024
EXAMPLES = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def url(
    mongo: Mongo, database_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    database = f"{database_name}_hostile"
    env = service_env(mongo.admin_uri, database, APP_MAX_BODY_BYTES=str(MAX_BODY))
    with Gunicorn(env, tmp_path_factory.mktemp("hostile")) as server:
        yield f"{server.url}/data"
    with mongo.client() as client:
        client.drop_database(database)


def post(url: str, body: bytes) -> requests.Response:
    return requests.post(
        url, data=body, headers={"Content-Type": "application/json"}, timeout=30, auth=WRITER
    )


def code_of(response: requests.Response) -> str | None:
    assert response.status_code < 500, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()["error"]["code"] if response.status_code >= 400 else None


# Strings that would change the depth if brackets or quotes inside them were counted.
DECOYS = {
    "plain": "",
    "opening brackets": '"s": "[[[[{{{{", ',
    "closing brackets": '"s": "]]]]}}}}", ',
    "escaped quotes": '"s": "\\"]}\\"[{\\\\\\"", ',
    "escaped backslash": '"s": "x\\\\", "t": "]]", ',
}


def nested(levels: int, shape: str, spaced: bool, decoy: str, closed: bool = True) -> bytes:
    """A body nested ``levels`` deep: every level an object, an array, or alternating."""
    gap = "\n  " if spaced else ""
    colon = " : " if spaced else ":"
    opens, closes = [], []
    for level in range(levels):
        if (shape == "arrays" and level > 0) or (shape == "mixed" and level % 2 == 1):
            opens.append(f"[{gap}")
            closes.append(f"{gap}]")
        else:
            opens.append(f'{{{gap}{decoy}"a"{colon}')
            closes.append(f"{gap}}}")
    text = "".join(opens) + "1" + ("".join(reversed(closes)) if closed else "")
    return text.encode()


def depth_of(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend(
                (child, level + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


@pytest.mark.parametrize("decoy", sorted(DECOYS))
@pytest.mark.parametrize("spaced", [False, True], ids=["compact", "spaced"])
@pytest.mark.parametrize("shape", ["objects", "arrays", "mixed"])
@pytest.mark.parametrize("levels", [33, 1000, 2000, 5000, 100_000])
def test_body_nested_beyond_32_levels_is_too_deep(url, levels, shape, spaced, decoy):
    body = nested(levels, shape, spaced, DECOYS[decoy])
    assert len(body) <= MAX_BODY
    assert code_of(post(url, body)) == "too_deep"


@pytest.mark.parametrize("levels", [33, 5000, 100_000])
def test_unclosed_deep_body_is_too_deep(url, levels):
    assert code_of(post(url, nested(levels, "mixed", False, "", closed=False))) == "too_deep"
    assert code_of(post(url, b"[" * levels)) == "too_deep"


@pytest.mark.parametrize("decoy", sorted(DECOYS))
@pytest.mark.parametrize("shape", ["objects", "mixed"])
def test_body_nested_32_levels_is_stored(url, shape, decoy):
    # Brackets and quotes inside strings do not count: 32 real levels are accepted.
    body = nested(32, shape, True, DECOYS[decoy])
    assert depth_of(json.loads(body)) == 32
    response = post(url, body)
    assert response.status_code == 201, response.text


def test_nesting_hidden_behind_closing_brackets_in_strings_is_found(url):
    # Closing brackets inside strings must not cancel real openers.
    body = nested(40, "objects", False, '"s": "' + "]" * 40 + "}" * 40 + '", ')
    assert code_of(post(url, body)) == "too_deep"


@EXAMPLES
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_get_a_server_error(url, body):
    code_of(post(url, body))


def _text() -> st.SearchStrategy[str]:
    # Any code point, unpaired surrogates included, and the characters that matter to JSON.
    return st.text(
        st.characters(exclude_categories=()) | st.sampled_from('[]{}"\\$.\x00'), max_size=8
    )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | _text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_text(), children, max_size=4)
    ),
    max_leaves=60,
)


@EXAMPLES
@given(st.dictionaries(_text(), JSON_VALUES, max_size=5), st.sampled_from([None, 0, 2]))
def test_arbitrary_json_object_is_stored_or_refused_with_400(url, document, indent):
    body = json.dumps(document, indent=indent).encode()
    code = code_of(post(url, body))
    assert (code == "too_deep") == (depth_of(document) > 32)


@st.composite
def bracket_soup(draw: st.DrawFn) -> tuple[bytes, int]:
    """Runs of up to 3,000 openings (objects and arrays in a drawn pattern, with decoy strings
    and spacing) and of closings, maybe left unclosed; returns the text and its real depth."""
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(-3000, 3000),
                st.text(alphabet="{[", min_size=1, max_size=4),
                st.sampled_from(sorted(DECOYS)),
                st.booleans(),
            ),
            max_size=6,
        )
    )
    parts: list[str] = []
    closers: list[str] = []
    deepest = 0
    for count, pattern, decoy, spaced in steps:
        gap = " \n" if spaced else ""
        if count >= 0:
            for index in range(count):
                if pattern[index % len(pattern)] == "[":
                    parts.append(f"[{gap}")
                    closers.append("]")
                else:
                    parts.append(f'{{{gap}{DECOYS[decoy]}"k":{gap}')
                    closers.append("}")
            deepest = max(deepest, len(closers))
        else:
            for _ in range(min(-count, len(closers))):
                parts.append(f'"]}}"{gap}{closers.pop()}')
                parts.append("," if closers and closers[-1] == "]" else ', "n":')
    if draw(st.booleans()):
        parts.append("0")
        parts.extend(reversed(closers))
    return "".join(parts).encode(), deepest


@EXAMPLES
@given(bracket_soup())
def test_any_mix_of_nesting_is_too_deep_exactly_when_deeper_than_32(url, soup):
    body, deepest = soup
    code = code_of(post(url, body))
    assert (code == "too_deep") == (deepest > 32), body[:200]
