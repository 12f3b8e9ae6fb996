-- How many physical standbys stream from this server, plus the physical replication slots
-- (a standby that holds one replays everything when it comes back).
SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication)
     + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_replication_slots
        WHERE slot_type = 'physical');
