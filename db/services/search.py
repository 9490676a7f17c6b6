"""Full-text search over the messages a caller may see, answered from each database's index.

PostgreSQL: `websearch_to_tsquery('english', query)` against the expression index
`idx_messages_search` (GIN on `to_tsvector('english', content)`, migration 4), ranked by
`ts_rank_cd` (more and closer matches rank higher), the snippet by `ts_headline`.
SQLite: the FTS5 table `message_search` (porter stemming, rowid = `message_search_ids.id`,
kept in step with `messages` by triggers), queried with an expression this module writes
from the user's query (never the user's text as FTS5 syntax), ranked by bm25, the snippet
by `snippet()`. Equal ranks: newest first (by time on PostgreSQL, by the order messages
were indexed on SQLite). Both indexes are written by the transaction that stores or
deletes a message, so a search sees exactly what is stored.

The query language is websearch_to_tsquery's, which the SQLite translation follows:
words (all must match), "phrases in quotes", `-excluded` words or phrases, and `or`
between two terms. Common English words (PostgreSQL's english stop list) are left out
on both databases; a query with nothing else left (blank, only exclusions, only common
words) is refused.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections

from db.errors import Invalid
from db.identity import Caller
from db.models import Message
from db.services import sessions
from db.services.pagination import DEFAULT_PAGE_SIZE
from db.services.text import text_problem
from db.sql import markers

# Long enough for any sentence a person types; bounds the parsing and the index lookups
# one request can cost.
MAX_QUERY_CHARS = 500
# Snippet length: PostgreSQL counts words, SQLite tokens (nearly the same thing).
SNIPPET_MAX_WORDS = 24
SNIPPET_MIN_WORDS = 12
ELLIPSIS = "…"
MARK_START, MARK_END = "<mark>", "</mark>"

# The database marks matches with characters we then find in its answer: control
# characters by default. Stored text may hold any character but NUL (db/services/text.py),
# so a page whose messages hold one of these gets its snippets again with others, the
# first characters none of its messages holds (`_markers`): more control characters, then
# private use ones and on through Unicode (never a space, which `_html` collapses).
DEFAULT_MARKERS = ("\x02", "\x03", "\x04")  # match start, match end, "<" (PostgreSQL)


def _marker_candidates() -> Iterator[str]:
    for code in itertools.chain(range(0x02, 0x20), range(0x7F, 0xA0), range(0xE000, 0x110000)):
        char = chr(code)
        # Noncharacters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF) are left for other uses.
        if not char.isspace() and (code & 0xFFFE) != 0xFFFE and not 0xFDD0 <= code <= 0xFDEF:
            yield char


# PostgreSQL's english stop list (tsearch_data/english.stop): the words `to_tsvector` and
# `websearch_to_tsquery` drop. The SQLite translation drops them too, so a query means
# the same on both databases ("the cat" finds "a cat").
_ENGLISH_STOP = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what
    which who whom this that these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for
    with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how
    all any both each few more most other some such no nor not only own same so than too
    very s t can will just don should now"""
STOP_WORDS = frozenset(_ENGLISH_STOP.split())
# What FTS5's unicode61 tokenizer keeps as a word: runs of letters and digits.
_TOKEN = re.compile(r"[^\W_]+")
# One piece of a query: an optional "-", then a quoted phrase (the closing quote may be
# missing) or a word running to the next space or quote.
_PIECE = re.compile(r'(?P<minus>-)?(?:"(?P<phrase>[^"]*)"?|(?P<word>[^\s"]+))')


@dataclass(frozen=True, slots=True)
class SearchHit:
    message: Message
    snippet: str  # HTML: the text escaped, each match in <mark>...</mark>
    rank: float  # higher is better; comparable within one search only


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    total: int  # matches in all, not just this page


async def search(
    *,
    caller: Caller,
    query: str,
    session_id: str | None = None,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
) -> SearchPage:
    """Messages matching `query` in sessions the caller may see (one session's with
    `session_id`), best match first: `limit` of them after the first `offset`."""
    text = _checked(query)
    in_session = None
    if session_id is not None:
        in_session = str((await sessions.get(caller=caller, session_id=session_id)).id)
    dialect = connections.get("default").capabilities.dialect
    if dialect == "postgres":
        search_with: type[_Backend] = _Postgres
    else:
        search_with = _Sqlite
        text = _fts5_expression(text)
    backend = search_with(caller=caller, text=text, session_id=in_session)
    rows = await backend.page(offset=offset, limit=limit)
    if rows:
        total = int(rows[0]["total"])
    else:
        # Nothing on this page: the query may be one the index cannot answer, or the
        # page lies past the end (or is empty), where the total is still wanted.
        total = await backend.count()
    chosen = _markers([row["content"] for row in rows])
    if chosen is None:
        snippets = {row["id"]: _unmarked(row["content"]) for row in rows}
    else:
        if chosen == DEFAULT_MARKERS:
            raw = {row["id"]: row["snippet"] for row in rows}
        else:
            raw = await backend.snippets([row["id"] for row in rows], chosen)
        snippets = {row["id"]: _html(raw[row["id"]], row["content"], chosen) for row in rows}
    hits = [
        SearchHit(
            message=Message.from_row(row), snippet=snippets[row["id"]], rank=float(row["score"])
        )
        for row in rows
    ]
    return SearchPage(hits=hits, total=total)


def _checked(query: str) -> str:
    problem = text_problem(query)
    if problem is not None:
        raise Invalid(problem, field="query")
    if not query.strip():
        raise Invalid("must not be blank", field="query")
    if len(query) > MAX_QUERY_CHARS:
        raise Invalid(f"must be at most {MAX_QUERY_CHARS} characters", field="query")
    return query


def _unsearchable() -> Invalid:
    return Invalid(
        "has nothing to search for: it needs a word or phrase that is not excluded "
        "and not a common word (the, and, of...)",
        field="query",
    )


# The user's query as an FTS5 expression ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Term:
    text: str
    excluded: bool


def _terms(query: str) -> Iterator[_Term | None]:
    """The query's words and phrases in order; None for an `or` between two of them."""
    for piece in _PIECE.finditer(query):
        phrase, word = piece.group("phrase"), piece.group("word")
        minus = piece.group("minus") is not None
        if word is not None and not minus and word.lower() == "or":
            yield None
            continue
        words = _TOKEN.findall(phrase if phrase is not None else word)
        # A term of common words only (or of no word at all) is left out, as
        # PostgreSQL leaves it out of the tsquery.
        if any(w.lower() not in STOP_WORDS for w in words):
            yield _Term(phrase if phrase is not None else word, minus)


def _fts5_string(text: str) -> str:
    # An FTS5 string: whatever it holds is only text for the tokenizer (operators,
    # column filters, prefix stars and parentheses inside it mean nothing).
    return '"' + text.replace('"', '""') + '"'


def _fts5_expression(query: str) -> str:
    """`query` as an FTS5 expression: every term a quoted string, terms joined by AND,
    `or` between two included terms an OR, excluded ones after NOT."""
    groups: list[list[str]] = []  # AND of ORs
    excluded: list[str] = []
    joining = False
    for term in _terms(query):
        if term is None:
            joining = bool(groups)
        elif term.excluded:
            # "a or -b" has no FTS5 form (NOT is binary there): it is read as "a -b".
            excluded.append(_fts5_string(term.text))
            joining = False
        elif joining:
            groups[-1].append(_fts5_string(term.text))
            joining = False
        else:
            groups.append([_fts5_string(term.text)])
    if not groups:
        raise _unsearchable()
    expression = " AND ".join(f"({' OR '.join(group)})" for group in groups)
    if excluded:
        expression = f"({expression}) NOT ({' OR '.join(excluded)})"
    return expression


# Snippets --------------------------------------------------------------------------------


def _markers(contents: Sequence[str]) -> tuple[str, str, str] | None:
    """Three characters none of `contents` holds (the defaults when they can be); None if
    the page holds nearly every character there is."""
    if not any(mark in content for content in contents for mark in DEFAULT_MARKERS):
        return DEFAULT_MARKERS
    used = set().union(*map(set, contents))
    free = list(itertools.islice((c for c in _marker_candidates() if c not in used), 3))
    return (free[0], free[1], free[2]) if len(free) == 3 else None


def _unmarked(content: str) -> str:
    """A snippet without marks: the message's first words, escaped."""
    words = content.split()
    cut = " ".join(words[:SNIPPET_MAX_WORDS])
    return html.escape(cut + (ELLIPSIS if len(words) > SNIPPET_MAX_WORDS else ""))


def _html(raw: str, content: str, marks: tuple[str, str, str]) -> str:
    """A snippet from the database as HTML: escaped, matches in <mark>, whitespace
    runs made one space, and an ellipsis where the message goes on."""
    start, end, less_than = marks
    text = raw.replace(less_than, "<")
    plain = text.replace(start, "").replace(end, "").strip()
    # PostgreSQL's headline has no ellipses of its own (SQLite's snippet has), and ends
    # at a word: what the message holds around it is an ellipsis, or itself when it is
    # no word (the full stop of a short message).
    where = content.find(plain) if plain and ELLIPSIS not in (plain[0], plain[-1]) else -1
    if where >= 0:
        before, after = content[:where], content[where + len(plain) :]
        text = "".join(
            (
                ELLIPSIS if _TOKEN.search(before) else before,
                text.strip(),
                ELLIPSIS if _TOKEN.search(after) else after,
            )
        )
    escaped = html.escape(" ".join(text.split()))
    return escaped.replace(start, MARK_START).replace(end, MARK_END)


# The statements of each database ------------------------------------------------------

Statement = tuple[str, list[object]]


class _Params:
    """The parameters of one statement written by hand, numbered as they are added."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return markers(len(self.values))[-1]


class _Backend:
    """One search on one database: its statements (a ranked page, the count, snippets
    with other marks) and how they run.

    A page's rows hold every column of `messages`, `score`, `total` (matches in all) and
    `snippet` (marked with DEFAULT_MARKERS)."""

    def __init__(self, *, caller: Caller, text: str, session_id: str | None) -> None:
        self.caller = caller
        self.text = text
        self.session_id = session_id

    def page_statement(self, *, offset: int, limit: int) -> Statement:
        raise NotImplementedError

    def count_statement(self) -> Statement:
        raise NotImplementedError

    def snippets_statement(self, ids: Sequence[Any], marks: Sequence[str]) -> Statement:
        raise NotImplementedError

    async def rows(self, sql: str, values: list[object]) -> list[dict[str, Any]]:
        return list(await connections.get("default").execute_query_dict(sql, values))

    async def page(self, *, offset: int, limit: int) -> list[dict[str, Any]]:
        return await self.rows(*self.page_statement(offset=offset, limit=limit))

    async def count(self) -> int:
        (row,) = await self.rows(*self.count_statement())
        return int(row["total"])

    async def snippets(self, ids: Sequence[Any], marks: Sequence[str]) -> dict[Any, str]:
        rows = await self.rows(*self.snippets_statement(ids, marks))
        return {row["id"]: row["snippet"] for row in rows}


class _Postgres(_Backend):
    def tsquery(self, params: _Params) -> str:
        return f"websearch_to_tsquery('english', {params(self.text)})"

    def where(self, params: _Params, tsquery: str) -> str:
        """The match, and the messages the caller may see."""
        # The match is written exactly as the index's expression (idx_messages_search),
        # so the planner can use the index. A query whose tree is empty (common words
        # only) or 'T' (only exclusions: nothing the index can look up) is never run
        # against the table, where it would match nothing, or everything through a scan.
        condition = (
            f"to_tsvector('english', m.content) @@ {tsquery} "
            f"AND querytree({tsquery}) NOT IN ('', 'T')"
        )
        if self.session_id is not None:
            return f"{condition} AND m.session_id = {params(self.session_id)}"
        if self.caller.is_admin:
            return condition
        # The user's sessions as one array, found first: the index's matches and the
        # messages of those sessions are then two bitmaps ANDed (a join would look the
        # word up in the index once per session). The rule's admin half is a literal
        # the planner drops.
        visible = sessions.visible_sql("s", viewer=params(self.caller.user_id), admin="FALSE")
        return (
            f"{condition} AND m.session_id = ANY(ARRAY("
            f"SELECT s.id FROM chat_sessions AS s WHERE {visible}))"
        )

    def headline(self, params: _Params, content: str, tsquery: str, marks: Sequence[str]) -> str:
        # The headline parser drops whatever looks like an HTML tag, so "<" is swapped
        # out for it (and back, in `_html`).
        start, end, less_than = marks
        options = (
            f'StartSel="{start}", StopSel="{end}", MaxWords={SNIPPET_MAX_WORDS}, '
            # One fragment: the match with the words around it (without fragments the
            # excerpt starts at the first match). ShortWord=0 keeps "a" and "the" at
            # either end, as SQLite's snippet does.
            f"MinWords={SNIPPET_MIN_WORDS}, MaxFragments=1, ShortWord=0"
        )
        return (
            f"ts_headline('english', replace({content}, '<', {params(less_than)}), "
            f"{tsquery}, {params(options)})"
        )

    def page_statement(self, *, offset: int, limit: int) -> Statement:
        # Ranked (every match is scored to find the best), then headlines of the page's
        # rows only: ts_headline parses the whole text again, the costliest call here.
        params = _Params()
        tsquery = self.tsquery(params)
        where = self.where(params, tsquery)
        headline = self.headline(params, "hit.content", tsquery, DEFAULT_MARKERS)
        sql = f"""
SELECT hit.*, {headline} AS snippet
FROM (
    SELECT m.*, count(*) OVER () AS total,
        ts_rank_cd(to_tsvector('english', m.content), {tsquery}) AS score
    FROM messages AS m
    WHERE {where}
    ORDER BY score DESC, m.created_at DESC, m.id DESC
    LIMIT {params(limit)} OFFSET {params(offset)}
) AS hit
ORDER BY hit.score DESC, hit.created_at DESC, hit.id DESC"""
        return sql, params.values

    def count_statement(self) -> Statement:
        params = _Params()
        tsquery = self.tsquery(params)
        sql = f"""
SELECT querytree({tsquery}) AS tree, (
    SELECT count(*) FROM messages AS m WHERE {self.where(params, tsquery)}
) AS total"""
        return sql, params.values

    def snippets_statement(self, ids: Sequence[Any], marks: Sequence[str]) -> Statement:
        params = _Params()
        headline = self.headline(params, "m.content", self.tsquery(params), marks)
        listed = params([str(each) for each in ids])
        sql = f"SELECT m.id, {headline} AS snippet FROM messages AS m WHERE m.id = ANY({listed})"
        return sql, params.values

    async def rows(self, sql: str, values: list[object]) -> list[dict[str, Any]]:
        client = connections.get("default")
        async with client.acquire_connection() as connection:
            # Prepared for this search alone, not taken from the driver's cache, so that
            # PostgreSQL plans it for these values. A statement run five times gets a
            # generic plan, blind to how common the words are and how many messages the
            # caller has: at a million messages, ten times slower for a user's search.
            statement = await connection.prepare(sql)
            return [dict(row.items()) for row in await statement.fetch(*values)]

    async def count(self) -> int:
        (row,) = await self.rows(*self.count_statement())
        if row["tree"] in ("", "T"):
            raise _unsearchable()
        return int(row["total"])


class _Sqlite(_Backend):
    # The index is walked once, in FTS5's order, keeping the rows the caller may see: a
    # user's search rows are gathered from their sessions first (a set the walk tests
    # each row against; the "+" keeps SQLite from looking each one up in the index
    # instead, which would make FTS5 count every word's documents again per row, for
    # bm25). Only the page's rows are joined to their messages. FTS5's hidden `rank`
    # column is bm25() (lower is better), usable beside a window function where bm25()
    # itself is not; snippet() needs the MATCH of its own row, so the page is joined to
    # the index again, each row looked up by its rowid.
    def visible(self, params: _Params) -> str:
        """The index rows the caller may see, as a condition (none for an admin)."""
        if self.session_id is not None:
            return f"""AND +message_search.rowid IN (
    SELECT k.id FROM messages AS m JOIN message_search_ids AS k ON k.message_id = m.id
    WHERE m.session_id = {params(self.session_id)})"""
        if self.caller.is_admin:
            return ""
        # A user sees exactly their own sessions (`visible_sql` without its admin half,
        # which SQLite's planner would not drop: its index on user_id would go unused).
        owned = sessions.listed_sql("s", params(self.caller.user_id))
        return f"""AND +message_search.rowid IN (
    SELECT k.id FROM chat_sessions AS s JOIN messages AS m ON m.session_id = s.id
    JOIN message_search_ids AS k ON k.message_id = m.id WHERE {owned})"""

    @staticmethod
    def snippet(params: _Params, marks: Sequence[str]) -> str:
        start, end, _ = marks
        return (
            f"snippet(message_search, 0, {params(start)}, {params(end)}, "
            f"'{ELLIPSIS}', {SNIPPET_MAX_WORDS})"
        )

    def page_statement(self, *, offset: int, limit: int) -> Statement:
        # Ties are broken by the index's own order (the order messages were stored in):
        # no row is joined to its message before it is on the page.
        params = _Params()
        match = params(self.text)
        visible = self.visible(params)
        sql = f"""
SELECT m.*, hit.score, hit.total, {self.snippet(params, DEFAULT_MARKERS)} AS snippet
FROM (
    SELECT message_search.rowid AS search_id, -message_search.rank AS score,
        count(*) OVER () AS total
    FROM message_search
    WHERE message_search MATCH {match} {visible}
    ORDER BY score DESC, search_id DESC
    LIMIT {params(limit)} OFFSET {params(offset)}
) AS hit
JOIN message_search ON message_search.rowid = hit.search_id
JOIN message_search_ids AS k ON k.id = hit.search_id
JOIN messages AS m ON m.id = k.message_id
WHERE message_search MATCH {match}
ORDER BY hit.score DESC, hit.search_id DESC"""
        return sql, params.values

    def count_statement(self) -> Statement:
        params = _Params()
        match = params(self.text)
        sql = f"""
SELECT count(*) AS total FROM message_search
WHERE message_search MATCH {match} {self.visible(params)}"""
        return sql, params.values

    def snippets_statement(self, ids: Sequence[Any], marks: Sequence[str]) -> Statement:
        params = _Params()
        match = params(self.text)
        snippet = self.snippet(params, marks)
        listed = ", ".join(params(str(each)) for each in ids)
        sql = f"""
SELECT k.message_id AS id, {snippet} AS snippet
FROM message_search_ids AS k JOIN message_search ON message_search.rowid = k.id
WHERE k.message_id IN ({listed}) AND message_search MATCH {match}"""
        return sql, params.values
