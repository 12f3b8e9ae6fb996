-- How many physical standbys stream from this server, plus the physical replication slots
-- (a standby that holds one replays everything when it comes back). WAL senders that
-- serve a logical slot (logical replication, change data capture) replay no locks and do
-- not count.
SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication r
        WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s
                          WHERE s.active_pid = r.pid AND s.slot_type = 'logical'))
     + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots
        WHERE slot_type = 'physical');
