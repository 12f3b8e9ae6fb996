-- mv_drug_pipeline v1: one row per drug with targets, owners and its highest phase overall
-- (the seed's model), with the tie-breaker correction from marts.md on highest_phase_overall.
-- Reads mv_development_programs.
--
-- Written for speed; the rows are exactly the seed's. The seed runs four LATERAL subqueries
-- per drug (each a scan of its table unless the sources have indexes on drug_id) and an
-- EXISTS whose estimated cost switches JIT compilation on. Here each is computed once for
-- all drugs, grouped by drug_id, and left-joined: a drug without rows gets NULL, as a
-- LATERAL aggregate over no rows gives. The primary target is DISTINCT ON with the seed's
-- LIMIT 1 ordering (is_primary DESC, name ASC); is_combination is a left join to the
-- distinct parent ids, true exactly when the seed's EXISTS is.
WITH primary_target AS (
    SELECT DISTINCT ON (dta.drug_id) dta.drug_id, tgt.name AS target_name
    FROM drug_target_actions dta
    JOIN targets tgt ON tgt.id = dta.target_id
    ORDER BY dta.drug_id, dta.is_primary DESC, tgt.name ASC
),
all_targets AS (
    SELECT dta.drug_id, array_agg(DISTINCT tgt.name ORDER BY tgt.name) AS target_names
    FROM drug_target_actions dta
    JOIN targets tgt ON tgt.id = dta.target_id
    GROUP BY dta.drug_id
),
owners AS (
    SELECT dow.drug_id, array_agg(DISTINCT o.name ORDER BY o.name) AS owner_names
    FROM drug_ownerships dow
    JOIN organisations o ON o.id = dow.organisation_id
    WHERE dow.is_current = true
    GROUP BY dow.drug_id
),
parents AS (
    SELECT DISTINCT c.parent_id
    FROM drugs c
    WHERE c.parent_id IS NOT NULL
),
phase_agg AS (
    SELECT
        dp.drug_id,
        MAX(dp.highest_phase_rank) AS highest_phase_rank_overall,
        (array_agg(dp.highest_phase
            ORDER BY dp.highest_phase_rank DESC, dp.highest_phase DESC NULLS LAST))[1]
            AS highest_phase_overall
    FROM mv_development_programs dp
    GROUP BY dp.drug_id
)
SELECT
    d.id AS drug_id,
    d.bloupe_id,
    d.name AS drug_name,
    d.drug_status,
    d.drug_type,
    d.first_in_class,
    parents.parent_id IS NOT NULL AS is_combination,
    t.name AS technology_name,
    t.drug_class,
    primary_target.target_name AS primary_target_name,
    all_targets.target_names AS target_names,
    owners.owner_names AS current_owner_names,
    phase_agg.highest_phase_overall,
    phase_agg.highest_phase_rank_overall
FROM drugs d
LEFT JOIN technologies t ON t.id = d.technology_id
LEFT JOIN parents ON parents.parent_id = d.id
LEFT JOIN primary_target ON primary_target.drug_id = d.id
LEFT JOIN all_targets ON all_targets.drug_id = d.id
LEFT JOIN owners ON owners.drug_id = d.id
LEFT JOIN phase_agg ON phase_agg.drug_id = d.id
