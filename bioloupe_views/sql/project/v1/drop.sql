-- The tables of project schema v1, for `alembic downgrade base`: dropped one by one and
-- without CASCADE, so an object of someone else's built on them stops the downgrade (and
-- names itself) instead of disappearing with them. The routines are dropped before.
DROP TABLE bioloupe_views.run_log;
DROP TABLE bioloupe_views.run;
DROP TABLE bioloupe_views.check_definition;
DROP TABLE bioloupe_views.mart;
DROP SCHEMA bioloupe_views;
