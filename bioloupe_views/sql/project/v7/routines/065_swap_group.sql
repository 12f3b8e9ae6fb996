-- Publish a swap group, in the caller's transaction, which must commit right after: every
-- live mart of the group moves into a retired schema and its build aside into public, and
-- every view that read a live one is re-pointed to the new one in place (CREATE OR REPLACE
-- VIEW from its definition, printed before the locks are asked for: same oid, owner,
-- grants, comments and options, and checked to read exactly what it read before). The project's check views
-- are re-pointed so, those of other marts that read the group's included, and so are the
-- users' plain views (swap_blocker() has made sure the project's role may act as their
-- owners). Readers see the old relations or the new ones, never neither: a query waiting
-- for a lock the swap holds finds the new relation by name once it commits.
-- The exclusive locks are requested with a short lock_timeout (the run's swap_lock_timeout,
-- default 50ms), and the whole attempt retried with backoff until swap_wait (default 60s):
-- a long reader never makes the readers behind it queue for more than one attempt. An
-- autovacuum holding a mart is cancelled where the role may (else one attempt waits past
-- deadlock_timeout, after which PostgreSQL cancels it). If the locks never come, nothing
-- live has changed and the error names the sessions holding them.
-- Returns how long the locks were held up to the end of this function, and the attempts.
-- SECURITY DEFINER: the marts and the check views belong to the project's role.
CREATE FUNCTION bioloupe_views.swap_group(p_run uuid, p_group text,
                                          OUT locked_seconds numeric, OUT attempts integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_options jsonb;
    v_marts text[];
    v_stages name[];
    v_live oid[];
    v_retired name;
    v_deadline timestamptz;
    v_timeout text;
    v_locked timestamptz;
    v_name text;
    v_views jsonb;
    v_holders text;
    v_new oid;
    i integer;
    d record;
BEGIN
    SELECT r.options INTO v_options FROM bioloupe_views.run r WHERE r.run_id = p_run;
    SELECT pg_catalog.array_agg(l.mart ORDER BY l.position),
           pg_catalog.array_agg(l.stage_schema ORDER BY l.position),
           pg_catalog.array_agg(mm.relid ORDER BY l.position)
    INTO v_marts, v_stages, v_live
    FROM bioloupe_views.run_log l JOIN bioloupe_views.managed_mart mm ON mm.name = l.mart
    WHERE l.run_id = p_run AND l.swap_group = p_group AND l.status IN ('staged', 'running');
    IF v_marts IS NULL OR pg_catalog.array_position(v_stages, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'swap group % of run % is not built aside', p_group, p_run;
    END IF;
    v_timeout := coalesce(v_options->>'swap_lock_timeout', '50ms');
    v_deadline := pg_catalog.clock_timestamp() + coalesce(v_options->>'swap_wait', '60s')::interval;
    v_retired := 'bioloupe_views_retired_'
                 || pg_catalog.substr(pg_catalog.md5(pg_catalog.gen_random_uuid()::text), 1, 12);
    EXECUTE pg_catalog.format('CREATE SCHEMA %I', v_retired);
    INSERT INTO bioloupe_views.stage (schema_name, run_id, mart, kind)
    VALUES (v_retired, p_run, p_group, 'retired');
    attempts := 0;
    LOOP
        attempts := attempts + 1;
        BEGIN
            -- The views that read a live mart of the group, printed now, before any lock is
            -- asked for, with the marts' schema on the path: the marts (and only what that
            -- path resolves the same way) are written by their bare names, which will
            -- resolve to the new marts once they are in place.
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true);
            SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'oid', v.oid, 'relkind', v.relkind,
                       'name', pg_catalog.format('%I.%I', n.nspname, v.relname),
                       'options', CASE WHEN v.reloptions IS NULL THEN ''
                                       ELSE ' WITH (' || pg_catalog.array_to_string(v.reloptions, ', ') || ')' END,
                       'definition', pg_catalog.rtrim(pg_catalog.pg_get_viewdef(v.oid), E'; \n'),
                       'bindings', (SELECT pg_catalog.jsonb_agg(b ORDER BY b)
                                    FROM bioloupe_views.view_bindings(v.oid) b)) ORDER BY v.oid), '[]')
            INTO v_views
            FROM pg_catalog.pg_class v JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
            WHERE v.oid IN (SELECT x.oid FROM bioloupe_views.swap_dependents(v_live) x);
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            SELECT e.v->>'name' INTO v_name FROM pg_catalog.jsonb_array_elements(v_views) e(v)
            WHERE e.v->>'relkind' <> 'v' LIMIT 1;
            IF v_name IS NOT NULL THEN
                RAISE EXCEPTION 'materialized view % was created on the group''s marts during the run, and cannot follow a swap; run again',
                    v_name USING ERRCODE = 'object_in_use';
            END IF;
            PERFORM pg_catalog.set_config('lock_timeout', v_timeout, true);
            -- Each move takes its mart's exclusive lock (materialized views cannot be
            -- locked with LOCK TABLE), under the lock_timeout.
            -- Once the first is held, every later wait comes out of one budget (the same
            -- lock_timeout, swap_lock_budget()): readers queued behind the first wait about
            -- twice it at most.
            FOR i IN 1 .. pg_catalog.array_length(v_marts, 1) LOOP
                IF i > 1 THEN
                    PERFORM bioloupe_views.swap_lock_budget(v_locked, v_timeout);
                END IF;
                EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW public.%I SET SCHEMA %I',
                                          v_marts[i], v_retired);
                IF i = 1 THEN
                    v_locked := pg_catalog.clock_timestamp();
                END IF;
                EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %I.%I SET SCHEMA public',
                                          v_stages[i], v_marts[i]);
            END LOOP;
            -- Holding the marts, nothing new can start to read them: the views printed are
            -- all there is, each replaced in place under the same path it was printed with.
            IF EXISTS (SELECT 1 FROM bioloupe_views.swap_dependents(v_live) x
                       WHERE NOT pg_catalog.jsonb_path_exists(v_views, '$[*] ? (@.oid == $o)',
                                                              pg_catalog.jsonb_build_object('o', x.oid))) THEN
                RAISE EXCEPTION 'a view was created on the group''s marts during the swap; run again'
                    USING ERRCODE = 'object_in_use';
            END IF;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, public, pg_temp', true);
            FOR d IN SELECT e.v FROM pg_catalog.jsonb_array_elements(v_views) e(v) LOOP
                PERFORM bioloupe_views.swap_lock_budget(v_locked, v_timeout);
                EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s%s AS %s', d.v->>'name',
                                          d.v->>'options', d.v->>'definition');
            END LOOP;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            SELECT e.v->>'name' INTO v_name FROM pg_catalog.jsonb_array_elements(v_views) e(v)
            WHERE (SELECT pg_catalog.jsonb_agg(b ORDER BY b)
                   FROM bioloupe_views.view_bindings((e.v->>'oid')::oid) b) IS DISTINCT FROM e.v->'bindings'
            LIMIT 1;
            IF v_name IS NOT NULL THEN
                RAISE EXCEPTION 'view % would read other objects after the swap than before; nothing was published',
                    v_name USING ERRCODE = 'object_in_use';
            END IF;
            FOR i IN 1 .. pg_catalog.array_length(v_marts, 1) LOOP
                v_new := pg_catalog.format('public.%I', v_marts[i])::pg_catalog.regclass::pg_catalog.oid;
                PERFORM bioloupe_views.carry_attributes(v_live[i], v_new, true);
            END LOOP;
            locked_seconds := extract(epoch FROM pg_catalog.clock_timestamp() - v_locked);
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            IF pg_catalog.clock_timestamp() >= v_deadline THEN
                SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('pid %s (%s, %s, %s on %s, %s: %s)', a.pid,
                           a.usename, coalesce(NULLIF(a.application_name, ''), 'no application'),
                           k.mode, k.relation::pg_catalog.regclass, a.state,
                           pg_catalog.left(pg_catalog.regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 60)), '; ')
                INTO v_holders
                FROM pg_catalog.pg_locks k JOIN pg_catalog.pg_stat_activity a ON a.pid = k.pid
                WHERE k.granted AND k.relation = ANY (v_live) AND k.pid <> pg_catalog.pg_backend_pid();
                RAISE EXCEPTION 'could not take the swap''s locks on % within % (% attempts of %): held by %; the live marts keep their data',
                    pg_catalog.array_to_string(v_marts, ', '), coalesce(v_options->>'swap_wait', '60s'),
                    attempts, v_timeout, coalesce(v_holders, 'sessions that have since let go')
                    USING ERRCODE = 'lock_not_available',
                          HINT = 'retry when those sessions are done, or run this mart with --strategy concurrent';
            END IF;
            -- An autovacuum in the way yields to a lock waiter only after deadlock_timeout:
            -- cancel it where this role may, else wait past deadlock_timeout once.
            v_timeout := coalesce(v_options->>'swap_lock_timeout', '50ms');
            FOR d IN SELECT DISTINCT k.pid FROM pg_catalog.pg_locks k
                     JOIN pg_catalog.pg_stat_activity a ON a.pid = k.pid
                     WHERE k.granted AND k.relation = ANY (v_live)
                       AND a.backend_type = 'autovacuum worker' LOOP
                BEGIN
                    IF NOT pg_catalog.pg_cancel_backend(d.pid) THEN
                        v_timeout := (pg_catalog.current_setting('deadlock_timeout')::interval
                                      + interval '200ms')::text;
                    END IF;
                EXCEPTION WHEN insufficient_privilege THEN
                    v_timeout := (pg_catalog.current_setting('deadlock_timeout')::interval
                                  + interval '200ms')::text;
                END;
            END LOOP;
            PERFORM pg_catalog.pg_sleep(LEAST(0.02 * 2 ^ LEAST(attempts, 6), 1.0) * (0.5 + pg_catalog.random()));
        END;
    END LOOP;
END;
$$;
