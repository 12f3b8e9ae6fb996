-- mv_development_programs v1: the highest development phase per drug x disease (the seed's
-- model), with the tie-breaker correction from marts.md: highest_phase DESC NULLS LAST.
--
-- Written for speed; the rows are exactly the seed's (tests/test_marts.py compares them).
-- The seed joins names into every trial row, sorts all of them by seven keys (names
-- included) and unnests a one-element array per row. Here:
-- * trial rows are first reduced by hashing to one row per (drug, disease, phase, nct_id);
-- * one sort then groups them by phase and picks the winning phase per pair (DISTINCT ON
--   with the seed's own ordering: rank DESC, phase DESC NULLS LAST);
-- * an approval always wins (rank 100 against at most 4), so a pair with an approval takes
--   the approval row and its trial rows are dropped by an anti-join;
-- * names are joined last, once per pair. The inner joins to drugs and diseases filter by
--   drug_id and disease_id, which are the pair itself, so filtering after the pick is the
--   same as the seed's filtering before it.
-- Kept from the seed on purpose: nct_ids is array_remove(sorted distinct nct_ids, NULL), so
-- trials whose nct_ids are all NULL give '{}' and approvals give NULL; dates are converted
-- to timestamptz (the seed's UNION with NULL::timestamptz), before MIN for approvals; the
-- trial filter is `overall_status NOT IN ('withdrawn')`, which also drops NULL statuses.
WITH trial_phase AS (
    SELECT
        i.drug_id,
        td.disease_id,
        ct.phase,
        CASE ct.phase
            WHEN 'phase4' THEN 4
            WHEN 'phase3' THEN 3
            WHEN 'phase2_3' THEN 3
            WHEN 'phase2' THEN 2
            WHEN 'phase1_2' THEN 2
            WHEN 'phase1' THEN 1
            WHEN 'early_phase1' THEN 1
            ELSE 0
        END AS phase_rank,
        ct.nct_id,
        min(ct.completion_date) AS completion_date
    FROM trial_arm_interventions tai
    JOIN interventions i ON i.id = tai.intervention_id
    JOIN trial_arms ta ON ta.id = tai.trial_arm_id
    JOIN clinical_trials ct ON ct.id = ta.clinical_trial_id
    JOIN trial_diseases td ON td.clinical_trial_id = ct.id
    WHERE i.drug_id IS NOT NULL
      AND ct.overall_status NOT IN ('withdrawn')
    GROUP BY i.drug_id, td.disease_id, ct.phase, ct.nct_id
),
best_trial AS (
    SELECT DISTINCT ON (drug_id, disease_id)
        drug_id,
        disease_id,
        phase,
        phase_rank,
        array_remove(array_agg(nct_id ORDER BY nct_id), NULL) AS nct_ids,
        min(completion_date)::timestamptz AS earliest_completion_date
    FROM trial_phase
    GROUP BY drug_id, disease_id, phase_rank, phase
    ORDER BY drug_id, disease_id, phase_rank DESC, phase DESC NULLS LAST
),
approved AS (
    SELECT da.drug_id, ind.disease_id, min(da.approval_date::timestamptz) AS approval_date
    FROM drug_approvals da
    JOIN indications ind ON ind.drug_approval_id = da.id
    WHERE da.approval_status = 'approved'
    GROUP BY da.drug_id, ind.disease_id
),
programs AS (
    SELECT
        drug_id, disease_id,
        'approved'::text AS highest_phase,
        100 AS highest_phase_rank,
        'approval'::text AS phase_source,
        NULL::text[] AS nct_ids,
        approval_date,
        NULL::timestamptz AS earliest_completion_date
    FROM approved
    UNION ALL
    SELECT
        bt.drug_id, bt.disease_id, bt.phase, bt.phase_rank, 'clinical_trial', bt.nct_ids,
        NULL::timestamptz, bt.earliest_completion_date
    FROM best_trial bt
    WHERE NOT EXISTS (SELECT 1 FROM approved a
                      WHERE a.drug_id = bt.drug_id AND a.disease_id = bt.disease_id)
)
SELECT
    p.drug_id,
    d.name AS drug_name,
    p.disease_id,
    dis.name AS disease_name,
    p.highest_phase,
    p.highest_phase_rank,
    p.phase_source,
    p.nct_ids,
    p.approval_date,
    p.earliest_completion_date
FROM programs p
JOIN drugs d ON d.id = p.drug_id
JOIN diseases dis ON dis.id = p.disease_id
