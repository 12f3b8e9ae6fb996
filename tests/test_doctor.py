"""Issue 7: `bioloupe-views doctor` reports the source indexes the marts' plans use and
prints the missing ones as CREATE INDEX CONCURRENTLY statements, never applying them."""

from __future__ import annotations

import psycopg2

from bioloupe_views import definitions


def _wanted() -> list[tuple[str, tuple[str, ...]]]:
    return sorted({(i.table, i.columns) for m in definitions.marts().values() for i in m.latest.source_indexes})


def _on_clause(table: str, columns: tuple[str, ...]) -> str:
    return f'ON "public"."{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)});'


def _statements(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("CREATE INDEX CONCURRENTLY")]


def _index_count(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
        return cur.fetchone()[0]


def test_doctor_prints_every_missing_index_and_creates_none(sources_dsn, cli):
    wanted = _wanted()
    assert wanted, "no mart declares source_indexes: doctor would have nothing to check"
    conn = psycopg2.connect(sources_dsn)
    conn.autocommit = True
    before = _index_count(conn)
    result = cli("doctor", dsn=sources_dsn)
    assert result.returncode == 0, result.stderr
    statements = _statements(result.stdout)
    # The synthetic sources have primary keys only, so every wanted index is missing.
    assert len(statements) == len(wanted), result.stdout
    for table, columns in wanted:
        assert any(s.endswith(_on_clause(table, columns)) for s in statements), (table, columns)
    assert _index_count(conn) == before, "doctor must never create an index"
    # The printed statements are valid SQL that creates exactly what doctor asks for.
    for statement in statements:
        with conn.cursor() as cur:
            cur.execute(statement)
    again = cli("doctor", dsn=sources_dsn)
    assert again.returncode == 0 and _statements(again.stdout) == [], again.stdout
    assert "No source index is missing." in again.stdout
    conn.close()


def test_an_existing_index_is_no_longer_printed_but_a_partial_one_is_not_enough(sources_dsn, cli):
    (table, columns), *others = _wanted()
    conn = psycopg2.connect(sources_dsn)
    conn.autocommit = True
    cols = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur:
        # A partial index cannot serve the mart's whole-table plan.
        cur.execute(f'CREATE INDEX partial_ix ON public."{table}" ({cols}) WHERE id < 0')
    statements = _statements(cli("doctor", dsn=sources_dsn).stdout)
    assert any(s.endswith(_on_clause(table, columns)) for s in statements)
    with conn.cursor() as cur:
        # A longer index that starts with the wanted columns serves it.
        cur.execute(f'CREATE INDEX longer_ix ON public."{table}" ({cols}, id)')
    result = cli("doctor", dsn=sources_dsn)
    assert result.returncode == 0, result.stderr
    statements = _statements(result.stdout)
    assert not any(s.endswith(_on_clause(table, columns)) for s in statements), result.stdout
    assert "longer_ix" in result.stdout
    assert len(statements) == len(others)
    for other_table, other_columns in others:
        assert any(s.endswith(_on_clause(other_table, other_columns)) for s in statements)
    conn.close()


def test_doctor_names_a_missing_source_table_in_one_line(sources_dsn, cli):
    (table, _columns), *_ = _wanted()
    conn = psycopg2.connect(sources_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP TABLE public."{table}" CASCADE')
    conn.close()
    result = cli("doctor", dsn=sources_dsn)
    assert result.returncode == 2
    assert table in result.stderr and "Traceback" not in result.stderr
