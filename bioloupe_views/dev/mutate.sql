-- A batch of source changes, applied to a database filled by generate.sql (any scale).
--
-- It stands for what the import pipelines do between two refreshes: new drugs, trials,
-- approvals and publication outcomes; updates that move phases (creating new ties), flip
-- ownership, withdraw trials, rename diseases and drugs, retype arms; and deletes of drugs,
-- trial diseases, interventions and more. Deterministic: rows are chosen by hashes of their
-- ids, never random(). New rows take ids beyond the current maximum of each table, so the
-- batch can be applied more than once. Batch size is proportional to the data (about 0.5-1%
-- of each table), with a small minimum so tiny scales change too.

-- Current maxima (new ids go above them) and batch sizes.
CREATE TEMP TABLE mut_p AS
SELECT (SELECT coalesce(max(id), 0) FROM drugs)                   AS m_drug,
       (SELECT coalesce(max(id), 0) FROM clinical_trials)         AS m_trial,
       (SELECT coalesce(max(id), 0) FROM trial_arms)              AS m_arm,
       (SELECT coalesce(max(id), 0) FROM interventions)           AS m_int,
       (SELECT coalesce(max(id), 0) FROM trial_arm_interventions) AS m_tai,
       (SELECT coalesce(max(id), 0) FROM trial_diseases)          AS m_td,
       (SELECT coalesce(max(id), 0) FROM trial_arm_results)       AS m_res,
       (SELECT coalesce(max(id), 0) FROM publications)            AS m_pub,
       (SELECT coalesce(max(id), 0) FROM publication_outcomes)    AS m_out,
       (SELECT coalesce(max(id), 0) FROM drug_approvals)          AS m_appr,
       (SELECT coalesce(max(id), 0) FROM indications)             AS m_ind,
       (SELECT coalesce(max(id), 0) FROM drug_ownerships)         AS m_own,
       (SELECT coalesce(max(id), 0) FROM drug_target_actions)     AS m_dta,
       greatest(3, (SELECT count(*) FROM drugs) / 200)                   AS n_drugs,
       greatest(4, (SELECT count(*) FROM clinical_trials) / 200)         AS n_trials,
       greatest(3, (SELECT count(*) FROM drug_approvals) / 100)          AS n_appr,
       greatest(5, (SELECT count(*) FROM publication_outcomes) / 200)    AS n_out,
       (SELECT coalesce(max(updated_at), timestamptz '2024-01-01 00:00:00+00') FROM trial_arm_results)    AS res_ts,
       (SELECT coalesce(max(updated_at), timestamptz '2024-01-01 00:00:00+00') FROM publication_outcomes) AS out_ts;

-- Existing drugs, diseases and publications numbered 1..n in id order, so "popular" low ids
-- can be picked like the generator does (rn = 1 + n * u^2).
CREATE TEMP TABLE mut_drug AS SELECT id, row_number() OVER (ORDER BY id) AS rn FROM drugs;
CREATE TEMP TABLE mut_dis AS SELECT id, row_number() OVER (ORDER BY id) AS rn FROM diseases;
CREATE TEMP TABLE mut_pub AS SELECT id, row_number() OVER (ORDER BY id) AS rn FROM publications;
CREATE TEMP TABLE mut_tech AS SELECT id, row_number() OVER (ORDER BY id) AS rn FROM technologies;
CREATE UNIQUE INDEX ON mut_drug (rn);
CREATE UNIQUE INDEX ON mut_dis (rn);
CREATE UNIQUE INDEX ON mut_pub (rn);
ANALYZE mut_drug, mut_dis, mut_pub, mut_tech;

-- pick(k, salt, n): 1..n, skewed to low numbers (popular entities).
CREATE FUNCTION pg_temp.pick(k bigint, salt bigint, n bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 1 + floor(n * power((hashint8extended(k, salt) & 4503599627370495)::float8
                                     / 4503599627370496::float8, 2))::bigint $$;

-- ===========================================================================================
-- Inserts
-- ===========================================================================================

-- New drugs; the second one is a combination parent of the third.
INSERT INTO drugs (id, bloupe_id, name, drug_status, drug_type, first_in_class, parent_id, technology_id)
SELECT p.m_drug + g,
       'BLP-N' || lpad((p.m_drug + g)::text, 9, '0'),
       'NEW-' || (p.m_drug + g),
       (ARRAY['preclinical', 'phase1', 'phase2', 'phase3'])[1 + g % 4],
       (ARRAY['small_molecule', 'monoclonal_antibody', 'adc', 'cell_therapy'])[1 + g % 4],
       CASE WHEN g % 3 = 0 THEN NULL ELSE g % 3 = 1 END,
       CASE WHEN g = 3 THEN p.m_drug + 2 ELSE NULL END,
       (SELECT t.id FROM mut_tech t WHERE t.rn = 1 + g % (SELECT count(*) FROM mut_tech))
FROM mut_p p, generate_series(1, p.n_drugs) g;

-- New trials, each with two arms (experimental + a comparator), two interventions (a new
-- drug, and a popular existing drug or nothing), two diseases (every 10th trial has none),
-- a result and a publication. Phases cycle through every label, so new ties appear.
INSERT INTO clinical_trials (id, nct_id, phase, overall_status, completion_date)
SELECT p.m_trial + g,
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'NCT' || lpad((p.m_trial + g)::text, 8, '0') END,
       (ARRAY['phase3', 'phase2_3', 'phase2', 'phase1_2', 'phase1', 'early_phase1', 'phase4',
              'na', NULL])[1 + g % 9],
       (ARRAY['recruiting', 'not_yet_recruiting', 'active_not_recruiting', 'completed'])[1 + g % 4],
       CASE WHEN g % 4 = 3 THEN date '2025-01-01' + g::int ELSE NULL END
FROM mut_p p, generate_series(1, p.n_trials) g;

INSERT INTO interventions (id, drug_id)
SELECT p.m_int + 2 * g - 1, p.m_drug + 1 + (g - 1) % p.n_drugs
FROM mut_p p, generate_series(1, p.n_trials) g
UNION ALL
SELECT p.m_int + 2 * g,
       CASE WHEN g % 5 = 0 THEN NULL
            ELSE (SELECT d.id FROM mut_drug d WHERE d.rn = pg_temp.pick(g, 801, (SELECT count(*) FROM mut_drug))) END
FROM mut_p p, generate_series(1, p.n_trials) g;

INSERT INTO trial_arms (id, clinical_trial_id, arm_type)
SELECT p.m_arm + 2 * g - 1, p.m_trial + g, 'experimental'
FROM mut_p p, generate_series(1, p.n_trials) g
UNION ALL
SELECT p.m_arm + 2 * g, p.m_trial + g,
       (ARRAY['placebo_comparator', 'active_comparator', NULL, 'sham_comparator', 'other'])[1 + g % 5]
FROM mut_p p, generate_series(1, p.n_trials) g;

-- Experimental arm: new drug (investigational) + the other intervention (partner);
-- comparator arm: the other intervention.
INSERT INTO trial_arm_interventions (id, trial_arm_id, intervention_id, is_investigational)
SELECT p.m_tai + 3 * g - 2, p.m_arm + 2 * g - 1, p.m_int + 2 * g - 1, true
FROM mut_p p, generate_series(1, p.n_trials) g
UNION ALL
SELECT p.m_tai + 3 * g - 1, p.m_arm + 2 * g - 1, p.m_int + 2 * g, false
FROM mut_p p, generate_series(1, p.n_trials) g
UNION ALL
SELECT p.m_tai + 3 * g, p.m_arm + 2 * g, p.m_int + 2 * g, CASE WHEN g % 3 = 0 THEN NULL ELSE false END
FROM mut_p p, generate_series(1, p.n_trials) g;

INSERT INTO trial_diseases (id, clinical_trial_id, disease_id)
SELECT p.m_td + 2 * g - 2 + k, p.m_trial + g,
       (SELECT d.id FROM mut_dis d WHERE d.rn = pg_temp.pick(g * 2 + k, 802, (SELECT count(*) FROM mut_dis)))
FROM mut_p p, generate_series(1, p.n_trials) g, generate_series(1, 2) k
WHERE g % 10 <> 0;

INSERT INTO trial_arm_results (id, trial_arm_id, endpoint, value, unit, ci_lower, ci_upper,
                               p_value, participants, updated_at)
SELECT p.m_res + g, p.m_arm + 2 * g - 1, 'Objective response rate', 20 + g % 50, '%',
       CASE WHEN g % 2 = 0 THEN NULL ELSE 10 + g % 50 END,
       CASE WHEN g % 2 = 0 THEN NULL ELSE 30 + g % 50 END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE 0.01 END,
       50 + g, p.res_ts + make_interval(secs => g)
FROM mut_p p, generate_series(1, p.n_trials) g;

INSERT INTO publications (id, pmid, publication_date, clinical_trial_id)
SELECT p.m_pub + g, (40000000 + p.m_pub + g)::text, date '2025-06-01' + g::int, p.m_trial + g
FROM mut_p p, generate_series(1, p.n_trials) g;

-- New approvals (mostly 'approved', some 'pending') for drug x disease pairs that trials
-- already reach, so 'approved' replaces a trial phase; every 4th lists its disease twice.
CREATE TEMP TABLE mut_pairs AS
SELECT drug_id, disease_id, row_number() OVER (ORDER BY h, drug_id, disease_id) AS rn
FROM (SELECT DISTINCT i.drug_id, td.disease_id,
                      hashint8extended(i.drug_id * 1000003 + td.disease_id, 803) AS h
      FROM (SELECT * FROM trial_diseases ORDER BY hashint8extended(id, 804), id
            LIMIT (SELECT n_appr * 4 FROM mut_p)) td
      JOIN trial_arms ta ON ta.clinical_trial_id = td.clinical_trial_id
      JOIN trial_arm_interventions tai ON tai.trial_arm_id = ta.id AND tai.is_investigational
      JOIN interventions i ON i.id = tai.intervention_id
      JOIN drugs d ON d.id = i.drug_id
      JOIN diseases dis ON dis.id = td.disease_id) x;

INSERT INTO drug_approvals (id, drug_id, approval_status, approval_date)
SELECT p.m_appr + x.rn, x.drug_id,
       CASE WHEN x.rn % 6 = 0 THEN 'pending' ELSE 'approved' END,
       CASE WHEN x.rn % 9 = 0 THEN NULL ELSE date '2025-01-01' + x.rn::int END
FROM mut_p p, mut_pairs x
WHERE x.rn <= p.n_appr;

INSERT INTO indications (id, drug_approval_id, disease_id)
SELECT p.m_ind + x.rn, p.m_appr + x.rn, x.disease_id
FROM mut_p p, mut_pairs x WHERE x.rn <= p.n_appr
UNION ALL
SELECT p.m_ind + p.n_appr + x.rn, p.m_appr + x.rn, x.disease_id
FROM mut_p p, mut_pairs x WHERE x.rn <= p.n_appr AND x.rn % 4 = 1;

-- New publication outcomes, all updated after every existing one. Drugs: new ones, popular
-- existing ones, NULL; diseases: popular ones or NULL.
INSERT INTO publication_outcomes (id, publication_id, drug_id, disease_id, endpoint, value, unit,
                                  ci_lower, ci_upper, p_value, participants, updated_at)
SELECT p.m_out + g,
       CASE WHEN g % 4 = 0 THEN p.m_pub + 1 + g % p.n_trials
            ELSE (SELECT b.id FROM mut_pub b WHERE b.rn = pg_temp.pick(g, 805, (SELECT count(*) FROM mut_pub))) END,
       CASE WHEN g % 11 = 0 THEN NULL
            WHEN g % 3 = 0 THEN p.m_drug + 1 + g % p.n_drugs
            ELSE (SELECT d.id FROM mut_drug d WHERE d.rn = pg_temp.pick(g, 806, (SELECT count(*) FROM mut_drug))) END,
       CASE WHEN g % 13 = 0 THEN NULL
            ELSE (SELECT d.id FROM mut_dis d WHERE d.rn = pg_temp.pick(g, 807, (SELECT count(*) FROM mut_dis))) END,
       'Overall survival', 10 + g % 20, 'months',
       CASE WHEN g % 2 = 0 THEN NULL ELSE 8 + g % 20 END,
       CASE WHEN g % 2 = 0 THEN NULL ELSE 12 + g % 20 END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE 0.02 END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE 100 + g END,
       p.out_ts + make_interval(secs => g)
FROM mut_p p, generate_series(1, p.n_out) g;

-- ===========================================================================================
-- Updates (only rows that existed before this batch)
-- ===========================================================================================

-- Phases: about 1% of the trials of each label move to another label. phase3 <-> phase2_3,
-- phase2 -> phase1_2 and phase1 -> early_phase1 create new ties; the others change ranks.
WITH m(from_phase, to_phase) AS (
    VALUES ('phase3', 'phase2_3'), ('phase2_3', 'phase3'), ('phase2', 'phase1_2'),
           ('phase1_2', 'phase2'), ('phase1', 'early_phase1'), ('early_phase1', 'phase2'),
           ('na', 'phase4'), (NULL, 'phase1'), ('phase4', NULL)
), r AS (
    SELECT c.id, c.phase,
           row_number() OVER (PARTITION BY c.phase ORDER BY hashint8extended(c.id, 811), c.id) AS rn,
           count(*) OVER (PARTITION BY c.phase) AS cnt
    FROM clinical_trials c, mut_p p WHERE c.id <= p.m_trial
)
UPDATE clinical_trials ct SET phase = m.to_phase
FROM r JOIN m ON r.phase IS NOT DISTINCT FROM m.from_phase
WHERE ct.id = r.id AND r.rn <= greatest(1, r.cnt / 100);

-- Overall status: some withdrawn and NULL-status trials become 'completed' (they re-enter
-- the marts), then 0.5% of the others are withdrawn (they leave).
WITH r AS (
    SELECT c.id, row_number() OVER (PARTITION BY c.overall_status ORDER BY hashint8extended(c.id, 812), c.id) AS rn,
           count(*) OVER (PARTITION BY c.overall_status) AS cnt
    FROM clinical_trials c, mut_p p
    WHERE c.id <= p.m_trial AND (c.overall_status = 'withdrawn' OR c.overall_status IS NULL)
)
UPDATE clinical_trials ct SET overall_status = 'completed'
FROM r WHERE ct.id = r.id AND r.rn <= greatest(1, r.cnt / 20);

UPDATE clinical_trials SET overall_status = 'withdrawn'
WHERE id IN (SELECT c.id FROM clinical_trials c, mut_p p
             WHERE c.id <= p.m_trial AND c.overall_status IS DISTINCT FROM 'withdrawn'
             ORDER BY hashint8extended(c.id, 813), c.id
             LIMIT greatest(2, (SELECT count(*) FROM clinical_trials) / 200));

-- Ownership: 1% of rows flip is_current.
UPDATE drug_ownerships SET is_current = NOT is_current
WHERE id IN (SELECT o.id FROM drug_ownerships o, mut_p p WHERE o.id <= p.m_own
             ORDER BY hashint8extended(o.id, 814), o.id
             LIMIT greatest(2, (SELECT count(*) FROM drug_ownerships) / 100));

-- Renames: the most popular disease (lowest id) and 1% of the others; 0.5% of drugs.
UPDATE diseases SET name = name || ' [renamed]'
WHERE id = (SELECT min(id) FROM diseases)
   OR id IN (SELECT id FROM diseases ORDER BY hashint8extended(id, 815), id
             LIMIT greatest(1, (SELECT count(*) FROM diseases) / 100));

UPDATE drugs SET name = name || ' [renamed]'
WHERE id IN (SELECT d.id FROM drugs d, mut_p p WHERE d.id <= p.m_drug
             ORDER BY hashint8extended(d.id, 816), d.id
             LIMIT greatest(1, (SELECT count(*) FROM drugs) / 200));

-- Drugs: 1% move to another technology (or lose it), 1% change status.
UPDATE drugs d SET technology_id = CASE WHEN d.id % 3 = 0 THEN NULL
                                        ELSE (SELECT t.id FROM mut_tech t
                                              WHERE t.rn = 1 + d.id % (SELECT count(*) FROM mut_tech)) END,
                   drug_status = CASE d.drug_status WHEN 'phase3' THEN 'approved'
                                                    WHEN 'phase2' THEN 'discontinued'
                                                    ELSE 'phase1' END
WHERE d.id IN (SELECT x.id FROM drugs x, mut_p p WHERE x.id <= p.m_drug
               ORDER BY hashint8extended(x.id, 817), x.id
               LIMIT greatest(1, (SELECT count(*) FROM drugs) / 100));

-- Arm types: 1% of the arms of each type change type (roles in mv_drug_trials change).
WITH m(from_type, to_type) AS (
    VALUES ('experimental', 'active_comparator'), ('active_comparator', 'experimental'),
           ('placebo_comparator', 'sham_comparator'), ('sham_comparator', 'placebo_comparator'),
           ('other', NULL), (NULL, 'other')
), r AS (
    SELECT a.id, a.arm_type,
           row_number() OVER (PARTITION BY a.arm_type ORDER BY hashint8extended(a.id, 818), a.id) AS rn,
           count(*) OVER (PARTITION BY a.arm_type) AS cnt
    FROM trial_arms a, mut_p p WHERE a.id <= p.m_arm
)
UPDATE trial_arms ta SET arm_type = m.to_type
FROM r JOIN m ON r.arm_type IS NOT DISTINCT FROM m.from_type
WHERE ta.id = r.id AND r.rn <= greatest(1, r.cnt / 100);

-- is_investigational: 0.5% of links change (true -> false -> NULL -> true).
UPDATE trial_arm_interventions
SET is_investigational = CASE WHEN is_investigational THEN false
                              WHEN NOT is_investigational THEN NULL
                              ELSE true END
WHERE id IN (SELECT t.id FROM trial_arm_interventions t, mut_p p WHERE t.id <= p.m_tai
             ORDER BY hashint8extended(t.id, 819), t.id
             LIMIT greatest(2, (SELECT count(*) FROM trial_arm_interventions) / 200));

-- Interventions: 1% of those with no drug or a missing drug get linked to a new drug (entity
-- resolution); 0.3% of those with a drug lose it.
UPDATE interventions i SET drug_id = p.m_drug + 1 + i.id % p.n_drugs
FROM mut_p p
WHERE i.id IN (SELECT x.id FROM interventions x, mut_p q
               WHERE x.id <= q.m_int
                 AND (x.drug_id IS NULL OR NOT EXISTS (SELECT 1 FROM drugs d WHERE d.id = x.drug_id))
               ORDER BY hashint8extended(x.id, 820), x.id
               LIMIT greatest(2, (SELECT count(*) FROM interventions) / 500));

UPDATE interventions SET drug_id = NULL
WHERE id IN (SELECT x.id FROM interventions x, mut_p p
             WHERE x.id <= p.m_int AND x.drug_id <= p.m_drug
             ORDER BY hashint8extended(x.id, 821), x.id
             LIMIT greatest(1, (SELECT count(*) FROM interventions) / 300));

-- Approvals: 10% of pending ones are approved, 2% of approved ones withdrawn.
WITH m(from_status, to_status, share) AS (VALUES ('pending', 'approved', 10), ('approved', 'withdrawn', 50)),
r AS (
    SELECT a.id, a.approval_status,
           row_number() OVER (PARTITION BY a.approval_status ORDER BY hashint8extended(a.id, 822), a.id) AS rn,
           count(*) OVER (PARTITION BY a.approval_status) AS cnt
    FROM drug_approvals a, mut_p p WHERE a.id <= p.m_appr
)
UPDATE drug_approvals da SET approval_status = m.to_status
FROM r JOIN m ON r.approval_status = m.from_status
WHERE da.id = r.id AND r.rn <= greatest(1, r.cnt / m.share);

-- Results: 0.5% are corrected, with a new updated_at.
UPDATE trial_arm_results t
SET value = round(coalesce(t.value, 1) * 1.1, 2), p_value = NULL,
    updated_at = p.res_ts + interval '1 day'
FROM mut_p p
WHERE t.id IN (SELECT x.id FROM trial_arm_results x, mut_p q WHERE x.id <= q.m_res
               ORDER BY hashint8extended(x.id, 823), x.id
               LIMIT greatest(2, (SELECT count(*) FROM trial_arm_results) / 200));

-- Targets: 1% of links flip is_primary (primary target ties appear and disappear).
UPDATE drug_target_actions SET is_primary = NOT is_primary
WHERE id IN (SELECT t.id FROM drug_target_actions t, mut_p p WHERE t.id <= p.m_dta
             ORDER BY hashint8extended(t.id, 824), t.id
             LIMIT greatest(2, (SELECT count(*) FROM drug_target_actions) / 100));

-- ===========================================================================================
-- Deletes (only rows that existed before this batch). Children are left in place, as the
-- real pipelines do: their references start to dangle.
-- ===========================================================================================

DELETE FROM drugs
WHERE id IN (SELECT d.id FROM drugs d, mut_p p WHERE d.id <= p.m_drug
             ORDER BY hashint8extended(d.id, 831), d.id
             LIMIT greatest(1, (SELECT count(*) FROM drugs) / 300));

DELETE FROM trial_diseases
WHERE id IN (SELECT t.id FROM trial_diseases t, mut_p p WHERE t.id <= p.m_td
             ORDER BY hashint8extended(t.id, 832), t.id
             LIMIT greatest(2, (SELECT count(*) FROM trial_diseases) / 100));

DELETE FROM interventions
WHERE id IN (SELECT i.id FROM interventions i, mut_p p WHERE i.id <= p.m_int
             ORDER BY hashint8extended(i.id, 833), i.id
             LIMIT greatest(2, (SELECT count(*) FROM interventions) / 200));

DELETE FROM indications
WHERE id IN (SELECT i.id FROM indications i, mut_p p WHERE i.id <= p.m_ind
             ORDER BY hashint8extended(i.id, 834), i.id
             LIMIT greatest(1, (SELECT count(*) FROM indications) / 100));

DELETE FROM drug_ownerships
WHERE id IN (SELECT o.id FROM drug_ownerships o, mut_p p WHERE o.id <= p.m_own
             ORDER BY hashint8extended(o.id, 835), o.id
             LIMIT greatest(1, (SELECT count(*) FROM drug_ownerships) / 200));

DELETE FROM drug_target_actions
WHERE id IN (SELECT t.id FROM drug_target_actions t, mut_p p WHERE t.id <= p.m_dta
             ORDER BY hashint8extended(t.id, 836), t.id
             LIMIT greatest(1, (SELECT count(*) FROM drug_target_actions) / 200));

-- Deleted evidence: nothing about it is left with a newer updated_at.
DELETE FROM trial_arm_results
WHERE id IN (SELECT t.id FROM trial_arm_results t, mut_p p WHERE t.id <= p.m_res
             ORDER BY hashint8extended(t.id, 837), t.id
             LIMIT greatest(1, (SELECT count(*) FROM trial_arm_results) / 500));

DELETE FROM publication_outcomes
WHERE id IN (SELECT o.id FROM publication_outcomes o, mut_p p WHERE o.id <= p.m_out
             ORDER BY hashint8extended(o.id, 838), o.id
             LIMIT greatest(1, (SELECT count(*) FROM publication_outcomes) / 500));

-- ===========================================================================================
DROP TABLE mut_pairs, mut_tech, mut_pub, mut_dis, mut_drug, mut_p;
DROP FUNCTION pg_temp.pick(bigint, bigint, bigint);

ANALYZE drugs, diseases, organisations, targets, technologies, drug_approvals, indications,
        clinical_trials, trial_arms, interventions, trial_arm_interventions, trial_diseases,
        trial_arm_results, publications, publication_outcomes, drug_ownerships,
        drug_target_actions;
