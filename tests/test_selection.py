"""dbt's node selection grammar in every command that selects: the grammar itself on small
graphs (pure functions), then through the real commands on a migrated database."""

from __future__ import annotations

import json

import pytest

from bioloupe_views import definitions, selection
from bioloupe_views.errors import UserError
from bioloupe_views.selection import CheckNode

#   a -> b -> c,  x -> c,  d alone;  sources: s1 read by a, public table t read by d
ORDER = ["a", "d", "x", "b", "c"]
UPSTREAM = {"a": set(), "d": set(), "x": set(), "b": {"a"}, "c": {"b", "x"}}
SOURCES = {"a": {"s1"}, "d": {"raw.t"}, "x": set(), "b": set(), "c": {"s1"}}
TAGS = {"a": ("core",), "b": ("core", "daily"), "c": ("daily",), "d": (), "x": ("core",)}
CHECKS = [CheckNode("not_null_a_id", "a", "not_null"), CheckNode("unique_c_id", "c", "unique"),
          CheckNode("assert_c_sane", "c", "singular"), CheckNode("assert_b_sane", "b", "singular")]


def sel(*include, exclude=()):
    return selection.select(ORDER, UPSTREAM, include, exclude, sources=SOURCES, tags=TAGS)


def sel_checks(*include, exclude=()):
    chosen = selection.select_checks(ORDER, UPSTREAM, CHECKS, include, exclude,
                                     sources=SOURCES, tags=TAGS)
    return [c.name for c in chosen]


@pytest.mark.parametrize("include, expected", [
    ((), ORDER),
    (("a b",), ["a", "b"]),                    # space: union
    (("a", "b"), ["a", "b"]),                  # repeated: union
    (("a+,+c",), ["a", "b", "c"]),             # comma: intersection
    (("a,b",), []),
    (("b+",), ["b", "c"]),
    (("+b",), ["a", "b"]),
    (("+b+",), ["a", "b", "c"]),
    (("a+1",), ["a", "b"]),
    (("1+c",), ["x", "b", "c"]),
    (("2+c",), ["a", "x", "b", "c"]),
    (("@b",), ["a", "x", "b", "c"]),           # b, c, and every ancestor of c: x too
    (("*",), ORDER),
    (("[ab]",), ["a", "b"]),
    (("tag:core",), ["a", "x", "b"]),
    (("tag:core,tag:daily",), ["b"]),
    (("tag:daily+",), ["b", "c"]),
    (("source:s1",), ["a", "c"]),              # the marts that read it
    (("source:s1+",), ["a", "b", "c"]),        # and their descendants
    (("source:s1+1",), ["a", "c"]),            # one level below the source: its readers
    (("source:t",), ["d"]),                    # the table's name, or its label
    (("source:raw.t",), ["d"]),
    (("source:s*,tag:core",), ["a"]),
])
def test_the_grammar(include, expected):
    assert sel(*include) == expected


def test_exclude_takes_the_same_grammar():
    assert sel("*", exclude=("tag:core,tag:daily",)) == ["a", "d", "x", "c"]
    assert sel("a+", exclude=("c d",)) == ["a", "b"]
    assert sel(exclude=("source:s1+",)) == ["d", "x"]


def test_checks_by_name_type_and_mart():
    assert sel_checks() == ["not_null_a_id", "assert_b_sane", "unique_c_id", "assert_c_sane"]
    assert sel_checks("assert_c_sane") == ["assert_c_sane"]
    assert sel_checks("test_type:singular") == ["assert_b_sane", "assert_c_sane"]
    assert sel_checks("test_type:generic") == ["not_null_a_id", "unique_c_id"]
    assert sel_checks("test_type:unique") == ["unique_c_id"]
    assert sel_checks("c,test_type:singular") == ["assert_c_sane"]
    assert sel_checks("b+") == ["assert_b_sane", "unique_c_id", "assert_c_sane"]
    assert sel_checks("assert_*") == ["assert_b_sane", "assert_c_sane"]
    assert sel_checks("tag:core", exclude=("test_type:singular",)) == ["not_null_a_id"]


@pytest.mark.parametrize("include, message", [
    ("q", "unknown mart 'q' in --select (valid names are a, d, x, b, c)"),
    ("tag:cor", "unknown tag 'cor' in --select: did you mean core? (valid tags are core, daily)"),
    ("source:s11+", "unknown source 's11' in --select: did you mean s1?"),
    ("zz*", "no mart matches 'zz*' in --select"),
    ("a:b", "unknown method 'a'"),
    ("@a+", "@ cannot be combined with +"),
    ("+", "invalid selector '+' in --select"),
    ("test_type:singular", "test_type: selects checks"),
])
def test_bad_selectors_are_one_line(include, message):
    with pytest.raises(UserError) as raised:
        sel(include)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_bad_names_in_exclude_and_in_check_selection():
    with pytest.raises(UserError, match=r"unknown mart 'q' in --exclude \(valid names"):
        sel(exclude=("q",))
    with pytest.raises(UserError) as raised:
        sel_checks("assert_c_san")
    assert str(raised.value) == ("unknown check 'assert_c_san' in --select: did you mean "
                                 "assert_c_sane or assert_b_sane? (valid names are a, d, x, b, c; check names: "
                                 "`bioloupe-views ls --resource-type check`)")
    with pytest.raises(UserError, match="unknown test_type 'singlar'.*did you mean singular"):
        sel_checks("test_type:singlar")


def test_the_marts_declare_tags_per_version():
    tags = {name: mart.latest.tags for name, mart in definitions.marts().items()}
    assert all(tags.values()), tags
    order = list(tags)
    assert selection.select(order, {m: set() for m in order}, ("tag:trials",)) == [
        "mv_drug_trials", "mv_efficacy_evidence"]


def test_tags_must_be_a_list_of_names(tmp_path):
    (tmp_path / "mart.toml").write_text('tags = "trials"\nunique_key = ["id"]\n')
    with pytest.raises(UserError, match="tags must be a list of names, got 'trials'"):
        definitions.MartVersion("mv_x", 1, tmp_path).tags


def test_definitions_get_names_the_closest_mart():
    with pytest.raises(UserError, match=r"^unknown mart 'mv_drug_pipline': did you mean "
                                        r"mv_drug_pipeline\? \(valid names are "):
        definitions.get("mv_drug_pipline")


# --- through the real commands -------------------------------------------------------------

def ls(cli, dsn, *args):
    result = cli("ls", *args, dsn=dsn)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_ls_previews_every_form_in_refresh_order(dsn, cli):
    assert ls(cli, dsn) == ["mv_development_programs", "mv_drug_trials", "mv_efficacy_evidence",
                            "mv_competitive_landscape", "mv_drug_pipeline"]
    # A comma intersects, as in dbt: these two share nothing.
    assert ls(cli, dsn, "-s", "mv_drug_trials,mv_drug_pipeline") == []
    assert ls(cli, dsn, "-s", "mv_drug_pipeline mv_drug_trials") == [
        "mv_drug_trials", "mv_drug_pipeline"]
    assert ls(cli, dsn, "-s", "mv_development_programs+,tag:pipeline",
              "--exclude", "mv_competitive_landscape") == [
        "mv_development_programs", "mv_drug_pipeline"]
    assert ls(cli, dsn, "-s", "@mv_drug_pipeline") == ["mv_development_programs",
                                                       "mv_drug_pipeline"]
    assert ls(cli, dsn, "-s", "mv_d*", "--exclude", "*pipeline") == [
        "mv_development_programs", "mv_drug_trials"]
    assert ls(cli, dsn, "-s", "source:drug_ownerships+") == ["mv_competitive_landscape",
                                                             "mv_drug_pipeline"]
    assert ls(cli, dsn, "-s", "tag:trials") == ["mv_drug_trials", "mv_efficacy_evidence"]


def test_ls_sources_and_checks(dsn, cli, sql):
    read = {r for (r,) in sql("SELECT DISTINCT c.relname FROM bioloupe_views.mart_reads r"
                              " JOIN pg_class c ON c.oid = r.relid WHERE r.mart = 'mv_drug_trials'"
                              " AND c.relkind <> 'v' AND c.relname NOT LIKE 'mv\\_%'")}
    sources = ls(cli, dsn, "-s", "mv_drug_trials", "--resource-type", "source")
    assert read and sources == sorted(read)
    singular = ls(cli, dsn, "-s", "test_type:singular", "--resource-type", "check")
    # In the order they run: their marts' refresh order (the landscape's level is 1).
    assert singular == ["assert_mv_dev_programs_no_orphans",
                        "assert_mv_efficacy_evidence_trial_pairs_in_programs",
                        "assert_mv_competitive_landscape_matches_programs"]
    assert sorted(singular) == [n for (n,) in sql("SELECT name FROM bioloupe_views.mart_check"
                                                  " WHERE test = 'singular' ORDER BY name")]


def test_check_selects_check_names_and_test_types(dsn, cli):
    one = cli("check", "-s", "assert_mv_dev_programs_no_orphans", "--json", "-", dsn=dsn)
    assert one.returncode == 0, one.stderr
    assert [r["name"] for r in json.loads(one.stdout)["results"]] == [
        "assert_mv_dev_programs_no_orphans"]
    generic = cli("check", "-s", "mv_drug_trials,test_type:generic", "--json", "-", dsn=dsn)
    names = [r["name"] for r in json.loads(generic.stdout)["results"]]
    assert generic.returncode == 0 and len(names) == 6
    assert all(n.startswith(("not_null_", "accepted_values_", "unique_", "relationships_"))
               for n in names), names


def test_refresh_graph_and_status_take_the_grammar(dsn, cli, sql):
    refreshed = cli("-s", "tag:pipeline,mv_development_programs+",
                    "--exclude", "mv_competitive_landscape", dsn=dsn, executable="refresh-views")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert {m for (m,) in sql("SELECT mart FROM bioloupe_views.run_log")} == {
        "mv_development_programs", "mv_drug_pipeline"}

    graph = cli("graph", "-s", "+mv_drug_pipeline", dsn=dsn)
    assert graph.returncode == 0, graph.stderr
    assert "Marts (2)" in graph.stdout and "mv_drug_trials" not in graph.stdout

    status = cli("status", "--json", "-s", "tag:trials", dsn=dsn)
    assert status.returncode == 0, status.stderr
    assert [m["mart"] for m in json.loads(status.stdout)["marts"]] == [
        "mv_drug_trials", "mv_efficacy_evidence"]


@pytest.mark.parametrize("args", [
    ("refresh", "-s", "mv_drug_trial+"), ("check", "-s", "mv_drug_trial"),
    ("graph", "-s", "mv_drug_trial"), ("status", "-s", "mv_drug_trial"),
    ("ls", "--exclude", "mv_drug_trial"), ("ls", "-s", "tag:trials,mv_drug_trial"),
    ("diff", "mv_drug_trial"), ("new-version", "mv_drug_trial"),
])
def test_one_message_for_an_unknown_mart_in_every_command(dsn, cli, args):
    result = cli(*args, dsn=dsn)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert "unknown mart" in result.stderr and "'mv_drug_trial'" in result.stderr
    assert "did you mean mv_drug_trials? (valid names are " in result.stderr


def test_refresh_takes_source_selectors(dsn, cli, sql):
    result = cli("refresh", "-s", "source:drug_ownerships+", dsn=dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {m for (m,) in sql("SELECT mart FROM bioloupe_views.run_log")} == {
        "mv_competitive_landscape", "mv_drug_pipeline"}
