-- Choose how each mart of a new run is published, and record it with the reason on its
-- run-log row (strategy, strategy_reason, swap_group). p_strategy is the run's:
--   * concurrent: every mart by REFRESH ... CONCURRENTLY (a plain REFRESH if unpopulated);
--   * swap: every mart built aside and swapped in, unless swap_blocker() names what cannot
--     follow it, then concurrent;
--   * auto: per mart, swap when nothing outside the project depends on it, no physical
--     standby streams from the server (the swap's exclusive lock would be replayed there,
--     cancelling its long queries), and its latest measured refresh changed more than
--     p_swap_share of its rows, or it is unpopulated; concurrent otherwise.
-- A swapped mart takes the marts that read it along (they must be built from its build
-- aside and published with it, or they would read a retired relation): they are added to
-- the run if it did not select them, and swapped whatever their own rule says. If one of
-- them cannot be swapped, neither can the marts it reads: they fall back to concurrent and
-- say which one held them. The marts swapped together form a group, published in one
-- transaction: a swapped mart, the marts that read it, and the marts whose checks read it.
CREATE FUNCTION bioloupe_views.plan_strategy(p_run uuid, p_strategy text, p_swap_share numeric)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_standbys bigint;
    v_plan jsonb := '{}';   -- mart -> {own, reason, blocker, selected, swap, group}
    v_changed boolean := true;
    r record;
    e record;
    v_share numeric;
    v_outside text;
    v_own boolean;
    v_reason text;
BEGIN
    IF p_strategy = 'concurrent' THEN
        UPDATE bioloupe_views.run_log SET strategy = 'concurrent' WHERE run_id = p_run;
        RETURN;
    END IF;
    -- As physical_standbys.sql: WAL senders that serve no logical slot, and physical slots.
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication s
            WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots l
                              WHERE l.active_pid = s.pid AND l.slot_type = 'logical'))
         + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots
            WHERE slot_type = 'physical')
    INTO v_standbys;
    -- Every mart: the run's own, and the ones a swap could bring along.
    FOR r IN SELECT mm.name AS mart, mm.populated,
                    EXISTS (SELECT 1 FROM bioloupe_views.run_log l
                            WHERE l.run_id = p_run AND l.mart = mm.name) AS selected
             FROM bioloupe_views.managed_mart mm LOOP
        v_outside := NULL;
        v_share := NULL;
        IF p_strategy = 'auto' THEN
            v_outside := bioloupe_views.outside_dependent(r.mart);
            -- Rows changed over rows before and after: an updated row is one delete and
            -- one insert, so k updates of n rows give k/n.
            SELECT (l.inserted + l.deleted)::numeric
                   / NULLIF(2 * l.rows + l.deleted - l.inserted, 0)
            INTO v_share
            FROM bioloupe_views.run_log l
            WHERE l.mart = r.mart AND l.status = 'success' AND l.mode = 'concurrent'
              AND l.inserted IS NOT NULL
            ORDER BY l.id DESC LIMIT 1;
        END IF;
        v_own := CASE WHEN NOT r.selected THEN false
                      WHEN p_strategy = 'swap' THEN true
                      WHEN v_outside IS NOT NULL OR v_standbys > 0 THEN false
                      WHEN NOT r.populated THEN true
                      ELSE coalesce(v_share > p_swap_share, false) END;
        v_reason := CASE
            WHEN p_strategy = 'swap' THEN 'swap: --strategy swap'
            WHEN v_outside IS NOT NULL THEN 'concurrent: ' || v_outside || ' reads it'
            WHEN v_standbys > 0 THEN 'concurrent: a physical standby streams from this server'
            WHEN NOT r.populated THEN 'swap: it is not populated'
            WHEN v_share IS NULL THEN 'concurrent: no measured share of changed rows yet'
            WHEN v_share > p_swap_share THEN pg_catalog.format(
                'swap: its last concurrent refresh changed %s%% of its rows (over %s%%)',
                pg_catalog.round(100 * v_share, 1), pg_catalog.round(100 * p_swap_share, 1))
            ELSE pg_catalog.format(
                'concurrent: its last refresh changed %s%% of its rows (at most %s%%)',
                pg_catalog.round(100 * v_share, 1), pg_catalog.round(100 * p_swap_share, 1)) END;
        v_plan := v_plan || pg_catalog.jsonb_build_object(r.mart, pg_catalog.jsonb_build_object(
            'own', v_own, 'reason', v_reason, 'blocker', bioloupe_views.swap_blocker(r.mart),
            'selected', r.selected, 'swap', false, 'group', r.mart));
    END LOOP;
    -- A mart that cannot be swapped is concurrent, and so is every mart upstream of it: a
    -- swap of those would have to bring it along.
    FOR e IN SELECT k AS mart, v->>'blocker' AS blocker FROM pg_catalog.jsonb_each(v_plan) x(k, v)
             WHERE v->>'blocker' IS NOT NULL ORDER BY k LOOP
        IF (v_plan->e.mart->>'own')::boolean THEN
            v_plan := pg_catalog.jsonb_set(v_plan, ARRAY[e.mart], v_plan->e.mart || pg_catalog.jsonb_build_object(
                'own', false, 'reason', 'concurrent: cannot be swapped, ' || e.blocker));
        END IF;
        FOR r IN WITH RECURSIVE up(mart) AS (
                     SELECT d.depends_on FROM bioloupe_views.mart_dependency d WHERE d.mart = e.mart
                     UNION
                     SELECT d.depends_on FROM up JOIN bioloupe_views.mart_dependency d ON d.mart = up.mart)
                 SELECT up.mart FROM up LOOP
            IF (v_plan->r.mart->>'own')::boolean THEN
                v_plan := pg_catalog.jsonb_set(v_plan, ARRAY[r.mart], v_plan->r.mart || pg_catalog.jsonb_build_object(
                    'own', false, 'reason', pg_catalog.format(
                        'concurrent: its dependent mart %s cannot be swapped (%s)', e.mart, e.blocker)));
            END IF;
        END LOOP;
    END LOOP;
    -- What is swapped: the marts whose own rule says so, and every mart downstream of them.
    FOR r IN WITH RECURSIVE swapped(mart, via) AS (
                 SELECT x.k, NULL::text FROM pg_catalog.jsonb_each(v_plan) x(k, v) WHERE (x.v->>'own')::boolean
                 UNION
                 SELECT d.mart, s.mart FROM swapped s
                 JOIN bioloupe_views.mart_dependency d ON d.depends_on = s.mart)
             SELECT s.mart, pg_catalog.string_agg(DISTINCT s.via, ', ') AS via
             FROM swapped s GROUP BY s.mart LOOP
        v_plan := pg_catalog.jsonb_set(v_plan, ARRAY[r.mart], v_plan->r.mart || pg_catalog.jsonb_build_object(
            'swap', true,
            'reason', CASE WHEN (v_plan->r.mart->>'own')::boolean THEN v_plan->r.mart->>'reason'
                           ELSE pg_catalog.format('swap: with %s, which it reads', r.via) END
                      || CASE WHEN (v_plan->r.mart->>'selected')::boolean THEN ''
                              ELSE ' (brought along)' END));
    END LOOP;
    -- Groups: swapped marts connected by what they or their checks read (mart_inputs), named
    -- after their first member. A mart whose checks read another swapped mart is audited
    -- against that mart's build aside and published with it: the audit sees the rows
    -- published together, and no group's swap waits for the locks another group's audit
    -- holds on the marts it read.
    WHILE v_changed LOOP
        v_changed := false;
        FOR e IN SELECT DISTINCT i.mart, i.upstream AS depends_on FROM bioloupe_views.mart_inputs i
                 WHERE i.upstream IS NOT NULL AND i.upstream <> i.mart
                   AND (v_plan->i.mart->>'swap')::boolean AND (v_plan->i.upstream->>'swap')::boolean LOOP
            IF v_plan->e.mart->>'group' <> v_plan->e.depends_on->>'group' THEN
                v_reason := LEAST(v_plan->e.mart->>'group', v_plan->e.depends_on->>'group');
                v_plan := pg_catalog.jsonb_set(v_plan, ARRAY[e.mart, 'group'], pg_catalog.to_jsonb(v_reason));
                v_plan := pg_catalog.jsonb_set(v_plan, ARRAY[e.depends_on, 'group'], pg_catalog.to_jsonb(v_reason));
                v_changed := true;
            END IF;
        END LOOP;
    END LOOP;
    -- Brought along: swapped marts the run did not select.
    INSERT INTO bioloupe_views.run_log (run_id, mart, status, trigger, position)
    SELECT p_run, x.k, 'pending', this_run.trigger, 0
    FROM pg_catalog.jsonb_each(v_plan) x(k, v)
    JOIN bioloupe_views.run this_run ON this_run.run_id = p_run
    WHERE (x.v->>'swap')::boolean AND NOT (x.v->>'selected')::boolean;
    UPDATE bioloupe_views.run_log l
    SET strategy = CASE WHEN (x.v->>'swap')::boolean THEN 'swap' ELSE 'concurrent' END,
        strategy_reason = x.v->>'reason',
        swap_group = CASE WHEN (x.v->>'swap')::boolean THEN x.v->>'group' END
    FROM pg_catalog.jsonb_each(v_plan) x(k, v)
    WHERE l.run_id = p_run AND l.mart = x.k;
    -- Refresh order again, with what was brought along.
    UPDATE bioloupe_views.run_log l SET position = o.position
    FROM (SELECT o.mart, pg_catalog.row_number() OVER (ORDER BY p.seconds DESC, o.level, o.mart) AS position
          FROM bioloupe_views.refresh_order o
          JOIN bioloupe_views.refresh_priority p ON p.mart = o.mart
          WHERE o.mart IN (SELECT x.mart FROM bioloupe_views.run_log x WHERE x.run_id = p_run)) o
    WHERE l.run_id = p_run AND l.mart = o.mart;
END;
$$;
