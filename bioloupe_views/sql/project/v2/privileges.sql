-- Only the owner runs the engine's routines, and the roles it grants them to (the
-- refresher role, `alembic -x refresher_role=NAME upgrade head`): PostgreSQL lets PUBLIC
-- execute every new function, so a role that could merely connect could start runs, close
-- live ones as abandoned, or take the refresh lock through them.
REVOKE ALL ON ALL ROUTINES IN SCHEMA bioloupe_views FROM PUBLIC;
