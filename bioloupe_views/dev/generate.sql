-- Deterministic synthetic data for the seventeen source tables (see contract.toml).
--
-- Usage: the tables exist and are empty; the caller runs `SET bioloupe.scale = '1'` and then
-- this whole file in one session. Scale 1 is about 1/60 of production (drugs ~1k, trials ~8k,
-- trial_arm_interventions ~33k); scale 60 is production size; fractional scales (0.05) still
-- give a few rows in every table.
--
-- Layout of the data:
--   1. Bulk rows: realistic distributions driven by hashes of ids (no random(): two runs give
--      identical data). Bulk rows reference bulk rows only, through ids 1..n of each entity;
--      some of those ids are gaps (never inserted), so some references dangle naturally.
--   2. Fixture rows: a small, hand-written block appended after the bulk ids of every table.
--      It holds every edge case of the source contract (phase ties, duplicates, NULLs, dangling
--      references), so they exist at every scale. Fixture names start with 'FX '.
-- Ids >= 900000000 are never inserted: references to them are the explicit dangling ones.

-- -------------------------------------------------------------------------------------------
-- Helpers (session-local, dropped at the end). Both are inlinable SQL functions.
-- -------------------------------------------------------------------------------------------

-- u(k, salt): a uniform pseudo-random number in [0, 1), fixed for a (k, salt) pair.
CREATE FUNCTION pg_temp.u(k bigint, salt bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(k, salt) & 4503599627370495)::float8 / 4503599627370496::float8 $$;

-- pick(k, salt, n, skew): an id in [1, n]; skew 1 is uniform, skew 2 or more favours low ids
-- (a few very popular drugs and diseases, a long tail).
CREATE FUNCTION pg_temp.pick(k bigint, salt bigint, n bigint, skew float8) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 1 + floor(n * power(pg_temp.u(k, salt), skew))::bigint $$;

-- fxid(ref, base): fixture references are small relative ids (base + ref), except the explicit
-- dangling ids (>= 900000000), which stay as they are.
CREATE FUNCTION pg_temp.fxid(ref bigint, base bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN ref >= 900000000 THEN ref ELSE base + ref END $$;

-- -------------------------------------------------------------------------------------------
-- Sizes. Production (scale 60): drugs 60k, diseases 20k, trials 500k, arms ~1.2M,
-- arm interventions ~2M, arm results 1.5M, publications 250k, outcomes 600k.
-- Per-parent counts (arms per trial, ...) are drawn below, so child tables land near target.
-- -------------------------------------------------------------------------------------------
CREATE TEMP TABLE gen_p AS
SELECT s,
       900000000::bigint                     AS dangle,        -- ids from here never exist
       greatest(4,  round(10 * s))::bigint    AS n_tech,        -- prod ~600
       greatest(6,  round(250 * s))::bigint   AS n_orgs,        -- prod ~15k
       greatest(6,  round(70 * s))::bigint    AS n_targets,     -- prod ~4.2k
       greatest(10, round(333 * s))::bigint   AS n_diseases,    -- prod ~20k
       greatest(20, round(1000 * s))::bigint  AS n_drugs,       -- prod ~60k
       greatest(8,  round(400 * s))::bigint   AS n_approvals,   -- prod ~24k
       greatest(40, round(8333 * s))::bigint  AS n_trials,      -- prod ~500k
       greatest(40, round(25000 * s))::bigint AS n_results,     -- prod ~1.5M
       greatest(20, round(4167 * s))::bigint  AS n_pubs,        -- prod ~250k
       greatest(40, round(10000 * s))::bigint AS n_outcomes     -- prod ~600k
FROM (SELECT current_setting('bioloupe.scale')::numeric AS s) x;

-- -------------------------------------------------------------------------------------------
-- Bulk: reference entities
-- -------------------------------------------------------------------------------------------

INSERT INTO technologies (id, name, drug_class)
SELECT g,
       (ARRAY['Small molecule', 'Monoclonal antibody', 'Antibody-drug conjugate',
              'Bispecific antibody', 'CAR-T', 'mRNA', 'siRNA', 'Antisense oligonucleotide',
              'AAV gene therapy', 'Peptide', 'Protein subunit vaccine', 'Radioligand'])[1 + (g - 1) % 12]
           || CASE WHEN g > 12 THEN ' platform ' || g ELSE '' END,
       CASE WHEN g % 7 = 3 THEN NULL                       -- drug_class is NULL sometimes
            ELSE (ARRAY['small_molecule', 'biologic', 'cell_gene_therapy', 'nucleic_acid', 'vaccine'])[1 + g % 5]
       END
FROM gen_p, generate_series(1, n_tech) g;

-- Organisation names repeat: every 12th id (2, 14, ...) reuses the name of the id before it.
INSERT INTO organisations (id, name)
SELECT g,
       (ARRAY['Pfizer', 'Novartis', 'Roche', 'Merck & Co', 'AstraZeneca', 'Sanofi', 'GSK',
              'Bristol Myers Squibb', 'AbbVie', 'Amgen', 'Gilead', 'Eli Lilly', 'Takeda',
              'Bayer', 'Novo Nordisk', 'Regeneron', 'BeiGene', 'Daiichi Sankyo', 'Jiangsu Hengrui',
              'Moderna'])[1 + (k - 1) % 20]
           || CASE WHEN k > 20 THEN ' ' || (ARRAY['Holdings', 'Therapeutics', 'Biosciences', 'Pharma', 'Oncology'])[1 + k % 5]
                                     || ' ' || ((k - 1) / 20) ELSE '' END
FROM gen_p, generate_series(1, n_orgs) g,
     LATERAL (SELECT CASE WHEN g % 12 = 2 THEN g - 1 ELSE g END AS k) n;

-- Target names repeat: every 10th id (2, 12, ...) reuses the name of the id before it.
INSERT INTO targets (id, name)
SELECT g,
       (ARRAY['EGFR', 'HER2', 'PD-1', 'PD-L1', 'VEGFA', 'TNF', 'IL-6', 'CD20', 'CD19', 'BCMA',
              'KRAS', 'BRAF', 'ALK', 'JAK1', 'JAK2', 'BTK', 'CDK4', 'CDK6', 'PARP1', 'GLP-1R',
              'SGLT2', 'PCSK9', 'IL-17A', 'IL-23', 'TROP2', 'CLDN18.2', 'FGFR2', 'MET', 'RET',
              'ROS1'])[1 + (k - 1) % 30]
           || CASE WHEN k > 30 THEN ' variant ' || ((k - 1) / 30) ELSE '' END
FROM gen_p, generate_series(1, n_targets) g,
     LATERAL (SELECT CASE WHEN g % 10 = 2 THEN g - 1 ELSE g END AS k) n;

-- Disease names repeat (every 15th id reuses the previous name). Ids with g % 89 = 41 are
-- gaps: never inserted, so trials and approvals that pick them point at a missing disease.
INSERT INTO diseases (id, name)
SELECT g,
       (ARRAY['Non-small cell lung cancer', 'Breast cancer', 'Multiple myeloma', 'Type 2 diabetes',
              'Rheumatoid arthritis', 'Psoriasis', 'Colorectal cancer', 'Prostate cancer',
              'Heart failure', 'Alzheimer disease', 'Obesity', 'Melanoma', 'Ulcerative colitis',
              'Crohn disease', 'Asthma', 'COPD', 'Hepatocellular carcinoma', 'Gastric cancer',
              'Diffuse large B-cell lymphoma', 'Acute myeloid leukemia', 'Atopic dermatitis',
              'Parkinson disease', 'Migraine', 'Major depressive disorder', 'Schizophrenia',
              'HIV infection', 'COVID-19', 'Influenza', 'Chronic kidney disease',
              'Pancreatic cancer'])[1 + (k - 1) % 30]
           || CASE WHEN k > 30 THEN ', subtype ' || ((k - 1) / 30) ELSE '' END
FROM gen_p, generate_series(1, n_diseases) g,
     LATERAL (SELECT CASE WHEN g % 15 = 2 THEN g - 1 ELSE g END AS k) n
WHERE g % 89 <> 41;

-- Drugs. Ids with g % 97 = 13 are gaps (deleted drugs that trials still reference).
-- Every 25th drug is a combination: the two drugs after it have parent_id pointing at it.
INSERT INTO drugs (id, bloupe_id, name, drug_status, drug_type, first_in_class, parent_id, technology_id)
SELECT g,
       CASE WHEN pg_temp.u(g, 1) < 0.04 THEN NULL ELSE 'BLP-' || lpad(g::text, 7, '0') END,
       CASE WHEN pg_temp.u(g, 2) < 0.7
            THEN upper(substr(md5(g::text), 1, 3)) || '-' || (100 + g % 900)        -- code name
            ELSE initcap((ARRAY['pem', 'niv', 'ada', 'ritu', 'tra', 'beva', 'ola', 'osi', 'ibru',
                                'vene', 'sema', 'tirze', 'dupi', 'secu', 'ustek'])[1 + g % 15]
                         || (ARRAY['bro', 'lu', 'li', 'zu', 'ta', 'ce', 'pa'])[1 + (g / 15) % 7])
                 || (ARRAY['mab', 'nib', 'parib', 'clax', 'glutide', 'cel', 'tide'])[1 + (g / 105) % 7]
       END,
       CASE WHEN r.ds < 0.06 THEN NULL
            WHEN r.ds < 0.16 THEN 'approved'
            WHEN r.ds < 0.26 THEN 'phase3'
            WHEN r.ds < 0.44 THEN 'phase2'
            WHEN r.ds < 0.60 THEN 'phase1'
            WHEN r.ds < 0.82 THEN 'preclinical'
            WHEN r.ds < 0.97 THEN 'discontinued'
            ELSE 'suspended' END,
       CASE WHEN r.dt < 0.05 THEN NULL
            WHEN r.dt < 0.50 THEN 'small_molecule'
            WHEN r.dt < 0.72 THEN 'monoclonal_antibody'
            WHEN r.dt < 0.78 THEN 'adc'
            WHEN r.dt < 0.84 THEN 'cell_therapy'
            WHEN r.dt < 0.88 THEN 'gene_therapy'
            WHEN r.dt < 0.94 THEN 'vaccine'
            ELSE 'peptide' END,
       CASE WHEN r.fic < 0.08 THEN true WHEN r.fic < 0.70 THEN false ELSE NULL END,
       CASE WHEN g > 25 AND g % 25 IN (1, 2) THEN g - g % 25                  -- combination parent
            WHEN g % 500 = 77 THEN p.dangle + g                                -- parent that is gone
            ELSE NULL END,
       CASE WHEN r.tech < 0.15 THEN NULL
            WHEN r.tech < 0.17 THEN p.dangle + g                               -- missing technology
            ELSE pg_temp.pick(g, 7, p.n_tech, 1.5) END
FROM gen_p p, generate_series(1, p.n_drugs) g,
     LATERAL (SELECT pg_temp.u(g, 3) AS ds, pg_temp.u(g, 4) AS dt, pg_temp.u(g, 5) AS fic,
                     pg_temp.u(g, 6) AS tech) r
WHERE g % 97 <> 13;

-- -------------------------------------------------------------------------------------------
-- Bulk: approvals and their indications
-- -------------------------------------------------------------------------------------------

INSERT INTO drug_approvals (id, drug_id, approval_status, approval_date)
SELECT g,
       CASE WHEN pg_temp.u(g, 11) < 0.02 THEN p.dangle + g                  -- drug that is gone
            ELSE pg_temp.pick(g, 12, p.n_drugs, 1.5) END,
       CASE WHEN r.st < 0.68 THEN 'approved'
            WHEN r.st < 0.78 THEN 'pending'
            WHEN r.st < 0.84 THEN 'withdrawn'
            WHEN r.st < 0.90 THEN 'rejected'
            WHEN r.st < 0.92 THEN 'conditional'
            ELSE NULL END,
       CASE WHEN pg_temp.u(g, 14) < 0.08 THEN NULL
            ELSE date '1985-01-01' + floor(pg_temp.u(g, 15) * 14000)::int END
FROM gen_p p, generate_series(1, p.n_approvals) g,
     LATERAL (SELECT pg_temp.u(g, 13) AS st) r;

-- 1-3 diseases per approval; every 30th approval lists its first disease twice. Two thirds
-- of the diseases are one of the drug's three "home" diseases (see trial_diseases below), so
-- approvals usually sit on pairs that trials also reach.
INSERT INTO indications (id, drug_approval_id, disease_id)
SELECT a.off + k,
       a.id,
       CASE WHEN pg_temp.u(a.id * 8 + kk, 21) < 0.01 THEN p.dangle + a.id * 8 + kk
            WHEN pg_temp.u(a.id * 8 + kk, 23) < 0.67
                THEN pg_temp.pick(a.drug_id * 4 + floor(pg_temp.u(a.id * 8 + kk, 24) * 3)::bigint,
                                  85, p.n_diseases, 2)
            ELSE pg_temp.pick(a.id * 8 + kk, 22, p.n_diseases, 2) END
FROM gen_p p,
     (SELECT id, drug_id, n, sum(n) OVER (ORDER BY id) - n AS off
      FROM (SELECT id, drug_id,
                   CASE WHEN id % 30 = 4 THEN 3                              -- has the duplicate
                        WHEN pg_temp.u(id, 20) < 0.60 THEN 1
                        WHEN pg_temp.u(id, 20) < 0.88 THEN 2
                        ELSE 3 END AS n
            FROM drug_approvals) c) a,
     generate_series(1, a.n) k,
     LATERAL (SELECT CASE WHEN a.id % 30 = 4 AND k = 2 THEN 1 ELSE k END AS kk) d;

-- -------------------------------------------------------------------------------------------
-- Bulk: trials. gen_trial holds per-trial counts and id offsets, so children get dense ids.
-- "Interventions of a trial" are consecutive intervention ids (the table has no trial column).
-- -------------------------------------------------------------------------------------------
CREATE TEMP TABLE gen_trial AS
SELECT t, n_int, n_arm, n_dis,
       sum(n_int) OVER w - n_int AS int_off,
       sum(n_arm) OVER w - n_arm AS arm_off,
       sum(n_dis) OVER w - n_dis AS dis_off
FROM (SELECT t,
             CASE WHEN pg_temp.u(t, 31) < 0.20 THEN 1 WHEN pg_temp.u(t, 31) < 0.58 THEN 2
                  WHEN pg_temp.u(t, 31) < 0.83 THEN 3 ELSE 4 END AS n_int,
             CASE WHEN pg_temp.u(t, 32) < 0.21 THEN 1 WHEN pg_temp.u(t, 32) < 0.63 THEN 2
                  WHEN pg_temp.u(t, 32) < 0.82 THEN 3 WHEN pg_temp.u(t, 32) < 0.93 THEN 4
                  WHEN pg_temp.u(t, 32) < 0.97 THEN 5 ELSE 6 END AS n_arm,
             -- 0-4 diseases (5% of trials have none); every 41st trial lists a disease twice
             CASE WHEN t % 41 = 6 THEN 2
                  WHEN pg_temp.u(t, 33) < 0.05 THEN 0 WHEN pg_temp.u(t, 33) < 0.67 THEN 1
                  WHEN pg_temp.u(t, 33) < 0.90 THEN 2 WHEN pg_temp.u(t, 33) < 0.97 THEN 3
                  ELSE 4 END AS n_dis
      FROM gen_p, generate_series(1, n_trials) t) c
WINDOW w AS (ORDER BY t);

INSERT INTO clinical_trials (id, nct_id, phase, overall_status, completion_date)
SELECT t,
       CASE WHEN pg_temp.u(t, 41) < 0.03 THEN NULL ELSE 'NCT' || lpad(t::text, 8, '0') END,
       CASE WHEN r.ph < 0.02 THEN 'early_phase1'
            WHEN r.ph < 0.21 THEN 'phase1'
            WHEN r.ph < 0.28 THEN 'phase1_2'
            WHEN r.ph < 0.52 THEN 'phase2'
            WHEN r.ph < 0.55 THEN 'phase2_3'
            WHEN r.ph < 0.67 THEN 'phase3'
            WHEN r.ph < 0.75 THEN 'phase4'
            WHEN r.ph < 0.94 THEN 'na'
            WHEN r.ph < 0.99 THEN NULL
            ELSE 'Phase 2' END,                                -- a label outside the known set
       CASE WHEN r.st < 0.44 THEN 'completed'
            WHEN r.st < 0.58 THEN 'recruiting'
            WHEN r.st < 0.66 THEN 'active_not_recruiting'
            WHEN r.st < 0.71 THEN 'not_yet_recruiting'
            WHEN r.st < 0.79 THEN 'terminated'
            WHEN r.st < 0.82 THEN 'withdrawn'
            WHEN r.st < 0.83 THEN 'suspended'
            WHEN r.st < 0.95 THEN 'unknown'
            ELSE NULL END,
       CASE WHEN pg_temp.u(t, 44) < 0.10 THEN NULL
            ELSE date '1998-01-01' + floor(pg_temp.u(t, 45) * 12000)::int END
FROM gen_p, generate_series(1, n_trials) t,
     LATERAL (SELECT pg_temp.u(t, 42) AS ph, pg_temp.u(t, 43) AS st) r;

-- Interventions: 18% are no drug (behavioural, device, placebo), 1% name a drug id that does
-- not exist (plus the drug-id gaps). In every 29th trial the second intervention is the same
-- drug as the first, and the first arm uses both: the same drug twice in one arm.
INSERT INTO interventions (id, drug_id)
SELECT gt.int_off + k,
       CASE WHEN pg_temp.u(key, 51) < 0.18 THEN NULL
            WHEN pg_temp.u(key, 51) < 0.19 THEN p.dangle + key
            ELSE pg_temp.pick(key, 52, p.n_drugs, 2) END
FROM gen_p p, gen_trial gt, generate_series(1, gt.n_int) k,
     LATERAL (SELECT gt.t * 16 + CASE WHEN gt.t % 29 = 4 AND k = 2 THEN 1 ELSE k END AS key) d;

-- Arms, with their type and how many of the trial's interventions they use.
CREATE TEMP TABLE gen_arm AS
SELECT arm_id, t, a, arm_type, n_int, int_off, n_tai,
       sum(n_tai) OVER (ORDER BY arm_id) - n_tai AS tai_off
FROM (SELECT gt.arm_off + a AS arm_id, gt.t, a, gt.n_int, gt.int_off,
             CASE WHEN a = 1 THEN
                      CASE WHEN r.at < 0.82 THEN 'experimental' WHEN r.at < 0.87 THEN 'other'
                           WHEN r.at < 0.90 THEN 'active_comparator' ELSE NULL END
                  ELSE
                      CASE WHEN r.at < 0.36 THEN 'experimental' WHEN r.at < 0.58 THEN 'active_comparator'
                           WHEN r.at < 0.82 THEN 'placebo_comparator' WHEN r.at < 0.85 THEN 'sham_comparator'
                           WHEN r.at < 0.92 THEN 'other' ELSE NULL END
             END AS arm_type,
             -- mostly 1-2 interventions per arm, never more than the trial has
             least(gt.n_int, CASE WHEN r.nt < 0.38 THEN 1 WHEN r.nt < 0.76 THEN 2
                                  WHEN r.nt < 0.92 THEN 3 ELSE 4 END) AS n_tai
      FROM gen_trial gt, generate_series(1, gt.n_arm) a,
           LATERAL (SELECT pg_temp.u(gt.t * 16 + a, 61) AS at, pg_temp.u(gt.t * 16 + a, 62) AS nt) r) c;

INSERT INTO trial_arms (id, clinical_trial_id, arm_type)
SELECT arm_id, t, arm_type FROM gen_arm;

-- A few arms whose trial does not exist (0.2% of trials' worth).
INSERT INTO trial_arms (id, clinical_trial_id, arm_type)
SELECT m.max_arm + g, p.dangle + g, 'experimental'
FROM gen_p p, (SELECT max(arm_id) AS max_arm FROM gen_arm) m,
     generate_series(1, greatest(1, p.n_trials / 500)) g;

-- Arm x intervention links. Arm a uses the trial's interventions a, a+1, ... (wrapping), so
-- arms share interventions the way real trials do. 0.3% link to a missing intervention.
INSERT INTO trial_arm_interventions (id, trial_arm_id, intervention_id, is_investigational)
SELECT ga.tai_off + j,
       ga.arm_id,
       CASE WHEN pg_temp.u(ga.tai_off + j, 71) < 0.003 THEN p.dangle + ga.tai_off + j
            ELSE ga.int_off + (ga.a - 1 + j - 1) % ga.n_int + 1 END,
       CASE WHEN ga.arm_type = 'experimental' AND j = 1 THEN
                CASE WHEN r.inv < 0.90 THEN true WHEN r.inv < 0.95 THEN false ELSE NULL END
            WHEN ga.arm_type = 'experimental' THEN                    -- combination partners
                CASE WHEN r.inv < 0.45 THEN true WHEN r.inv < 0.90 THEN false ELSE NULL END
            WHEN ga.arm_type LIKE '%comparator' THEN
                CASE WHEN r.inv < 0.08 THEN true WHEN r.inv < 0.85 THEN false ELSE NULL END
            WHEN ga.arm_type = 'other' THEN
                CASE WHEN r.inv < 0.30 THEN true WHEN r.inv < 0.80 THEN false ELSE NULL END
            ELSE
                CASE WHEN r.inv < 0.35 THEN true WHEN r.inv < 0.70 THEN false ELSE NULL END
       END
FROM gen_p p, gen_arm ga, generate_series(1, ga.n_tai) j,
     LATERAL (SELECT pg_temp.u(ga.tai_off + j, 72) AS inv) r;

-- Trial diseases (popular diseases much more common). Drugs are developed in a few diseases
-- through several trials: in 65% of trials the first disease is one of three "home" diseases
-- of the trial's lead drug (the drug picked for its first intervention), so the same
-- drug x disease pair is reached by trials of several phases, and phase ties are common.
-- Every 41st trial lists its first disease twice; 0.4% point at a missing disease (plus the
-- disease-id gaps).
INSERT INTO trial_diseases (id, clinical_trial_id, disease_id)
SELECT gt.dis_off + k,
       gt.t,
       CASE WHEN pg_temp.u(d.key, 81) < 0.004 THEN p.dangle + d.key
            WHEN d.kk = 1 AND pg_temp.u(gt.t, 83) < 0.65
                THEN pg_temp.pick(pg_temp.pick(gt.t * 16 + 1, 52, p.n_drugs, 2) * 4
                                  + floor(pg_temp.u(gt.t, 84) * 3)::bigint, 85, p.n_diseases, 2)
            ELSE pg_temp.pick(d.key, 82, p.n_diseases, 2) END
FROM gen_p p, gen_trial gt, generate_series(1, gt.n_dis) k,
     LATERAL (SELECT CASE WHEN gt.t % 41 = 6 AND k = 2 THEN 1 ELSE k END AS kk) c,
     LATERAL (SELECT gt.t * 8 + c.kk AS key, c.kk) d;

-- Arm results: spread over arms at random (about 1.25 per arm); 0.2% name a missing arm.
INSERT INTO trial_arm_results (id, trial_arm_id, endpoint, value, unit, ci_lower, ci_upper,
                               p_value, participants, updated_at)
SELECT g,
       CASE WHEN pg_temp.u(g, 91) < 0.002 THEN p.dangle + g
            ELSE pg_temp.pick(g, 92, m.n_arms, 1) END,
       CASE WHEN r.e < 0.04 THEN NULL
            ELSE (ARRAY['Overall survival', 'Progression-free survival', 'Objective response rate',
                        'Complete response rate', 'HbA1c change from baseline', 'ACR20 response',
                        'PASI 75 response', 'Change in LDL-C', 'Time to progression',
                        'Adverse events grade >= 3'])[1 + floor(r.e * 1000)::int % 10] END,
       CASE WHEN r.v < 0.05 THEN NULL ELSE round((r.v * 100)::numeric, 2) END,
       CASE WHEN r.e < 0.10 THEN NULL
            ELSE (ARRAY['months', '%', '%', '%', 'percentage points', '%', '%', 'mg/dL', 'weeks',
                        'participants'])[1 + floor(r.e * 1000)::int % 10] END,
       CASE WHEN r.ci < 0.30 THEN NULL ELSE round((r.v * 100 * (0.6 + r.ci * 0.3))::numeric, 2) END,
       CASE WHEN r.ci < 0.30 THEN NULL ELSE round((r.v * 100 * (1.1 + r.ci * 0.3))::numeric, 2) END,
       CASE WHEN r.pv < 0.40 THEN NULL ELSE round(power(r.pv, 6)::numeric, 5) END,
       CASE WHEN r.n < 0.10 THEN NULL ELSE 10 + floor(r.n * r.n * 2000)::int END,
       timestamptz '2019-01-01 00:00:00+00' + make_interval(secs => floor(pg_temp.u(g, 97) * 157680000))
FROM gen_p p, (SELECT max(arm_id) AS n_arms FROM gen_arm) m, generate_series(1, p.n_results) g,
     LATERAL (SELECT pg_temp.u(g, 93) AS e, pg_temp.u(g, 94) AS v, pg_temp.u(g, 95) AS ci,
                     pg_temp.u(g, 96) AS pv, pg_temp.u(g, 98) AS n) r;

-- -------------------------------------------------------------------------------------------
-- Bulk: publications and their outcomes
-- -------------------------------------------------------------------------------------------

-- A third of publications are about no registered trial; 2% name a trial that does not exist.
INSERT INTO publications (id, pmid, publication_date, clinical_trial_id)
SELECT g,
       CASE WHEN pg_temp.u(g, 101) < 0.05 THEN NULL ELSE (20000000 + g * 7)::text END,
       CASE WHEN pg_temp.u(g, 102) < 0.06 THEN NULL
            ELSE date '2000-01-01' + floor(pg_temp.u(g, 103) * 9000)::int END,
       CASE WHEN r.t < 0.33 THEN NULL
            WHEN r.t < 0.35 THEN p.dangle + g
            ELSE pg_temp.pick(g, 105, p.n_trials, 1) END
FROM gen_p p, generate_series(1, p.n_pubs) g,
     LATERAL (SELECT pg_temp.u(g, 104) AS t) r;

-- Outcomes: drug and disease are NULL (8%) or missing (2%, plus the id gaps) at times.
INSERT INTO publication_outcomes (id, publication_id, drug_id, disease_id, endpoint, value, unit,
                                  ci_lower, ci_upper, p_value, participants, updated_at)
SELECT g,
       CASE WHEN pg_temp.u(g, 111) < 0.002 THEN p.dangle + g ELSE pg_temp.pick(g, 112, p.n_pubs, 1) END,
       CASE WHEN r.dr < 0.08 THEN NULL WHEN r.dr < 0.10 THEN p.dangle + g
            ELSE pg_temp.pick(g, 114, p.n_drugs, 2) END,
       CASE WHEN r.di < 0.08 THEN NULL WHEN r.di < 0.10 THEN p.dangle + g
            ELSE pg_temp.pick(g, 116, p.n_diseases, 2) END,
       CASE WHEN r.e < 0.05 THEN NULL
            ELSE (ARRAY['Overall survival', 'Progression-free survival', 'Objective response rate',
                        'Hazard ratio for death', 'HbA1c change from baseline', 'Body weight change',
                        'EASI-75 response', 'Relapse rate'])[1 + floor(r.e * 1000)::int % 8] END,
       CASE WHEN r.v < 0.05 THEN NULL ELSE round((r.v * 50)::numeric, 3) END,
       CASE WHEN r.e < 0.12 THEN NULL
            ELSE (ARRAY['months', 'months', '%', 'HR', '%', 'kg', '%', 'events/year'])[1 + floor(r.e * 1000)::int % 8] END,
       CASE WHEN r.ci < 0.35 THEN NULL ELSE round((r.v * 50 * (0.6 + r.ci * 0.3))::numeric, 3) END,
       CASE WHEN r.ci < 0.35 THEN NULL ELSE round((r.v * 50 * (1.1 + r.ci * 0.3))::numeric, 3) END,
       CASE WHEN r.pv < 0.45 THEN NULL ELSE round(power(r.pv, 5)::numeric, 5) END,
       CASE WHEN r.n < 0.15 THEN NULL ELSE 20 + floor(r.n * r.n * 3000)::int END,
       timestamptz '2019-06-01 00:00:00+00' + make_interval(secs => floor(pg_temp.u(g, 117) * 157680000))
FROM gen_p p, generate_series(1, p.n_outcomes) g,
     LATERAL (SELECT pg_temp.u(g, 113) AS dr, pg_temp.u(g, 115) AS di, pg_temp.u(g, 118) AS e,
                     pg_temp.u(g, 119) AS v, pg_temp.u(g, 120) AS ci, pg_temp.u(g, 121) AS pv,
                     pg_temp.u(g, 122) AS n) r;

-- -------------------------------------------------------------------------------------------
-- Bulk: ownership and targets, per existing drug
-- -------------------------------------------------------------------------------------------

-- 0-3 owners per drug, 80% current; every 31st drug has its first owner on two rows.
INSERT INTO drug_ownerships (id, drug_id, organisation_id, is_current)
SELECT d.off + k,
       d.id,
       pg_temp.pick(d.id * 8 + CASE WHEN d.id % 31 = 5 AND k = 2 THEN 1 ELSE k END, 131, p.n_orgs, 1.5),
       pg_temp.u(d.off + k, 132) < 0.80
FROM gen_p p,
     (SELECT id, n, sum(n) OVER (ORDER BY id) - n AS off
      FROM (SELECT id,
                   CASE WHEN id % 31 = 5 THEN 2
                        WHEN pg_temp.u(id, 130) < 0.10 THEN 0 WHEN pg_temp.u(id, 130) < 0.65 THEN 1
                        WHEN pg_temp.u(id, 130) < 0.90 THEN 2 ELSE 3 END AS n
            FROM drugs) c) d,
     generate_series(1, d.n) k;

-- 0-4 targets per drug. The first is usually primary, later ones rarely: some drugs have two
-- primaries (a tie) and some none.
INSERT INTO drug_target_actions (id, drug_id, target_id, is_primary)
SELECT d.off + k,
       d.id,
       pg_temp.pick(d.id * 8 + k, 141, p.n_targets, 1.5),
       CASE WHEN k = 1 THEN pg_temp.u(d.off + k, 142) < 0.85 ELSE pg_temp.u(d.off + k, 142) < 0.10 END
FROM gen_p p,
     (SELECT id, n, sum(n) OVER (ORDER BY id) - n AS off
      FROM (SELECT id,
                   CASE WHEN pg_temp.u(id, 140) < 0.25 THEN 0 WHEN pg_temp.u(id, 140) < 0.65 THEN 1
                        WHEN pg_temp.u(id, 140) < 0.85 THEN 2 WHEN pg_temp.u(id, 140) < 0.95 THEN 3
                        ELSE 4 END AS n
            FROM drugs) c) d,
     generate_series(1, d.n) k;

-- -------------------------------------------------------------------------------------------
-- Fixtures: every edge case, at every scale. Ids are appended after the bulk ids; in the
-- VALUES lists below, references are relative fixture ids (1 = the first fixture row of that
-- table) and 900000001, 900000002 are ids that never exist.
--
-- Drugs: D1 'FX tie drug', D2 'FX combination' (parent of D3, D4), D3, D4 (every nullable
-- column NULL), D5 'FX pipeline tie drug', D6 (parent that does not exist).
-- Diseases: X1 rank-3 tie (phase3 vs phase2_3), X2 rank-2 tie (phase2 vs phase1_2),
-- X3 rank-1 tie (phase1 vs early_phase1), X4 rank-0 tie (na vs NULL vs 'Phase 2'),
-- X5 approval only, X6/X7 the same name (X6 also has an approval beating a trial).
-- -------------------------------------------------------------------------------------------
CREATE TEMP TABLE fx AS
SELECT p.n_tech AS tech, p.n_orgs AS org, p.n_targets AS tgt, p.n_diseases AS dis,
       p.n_drugs AS drug, p.n_trials AS trial, p.n_pubs AS pub,
       (SELECT coalesce(max(id), 0) FROM drug_approvals) AS appr,
       (SELECT coalesce(max(id), 0) FROM indications) AS ind,
       (SELECT coalesce(max(id), 0) FROM trial_arms) AS arm,
       (SELECT coalesce(max(id), 0) FROM interventions) AS intv,
       (SELECT coalesce(max(id), 0) FROM trial_arm_interventions) AS tai,
       (SELECT coalesce(max(id), 0) FROM trial_diseases) AS td,
       (SELECT coalesce(max(id), 0) FROM trial_arm_results) AS res,
       (SELECT coalesce(max(id), 0) FROM publication_outcomes) AS outc,
       (SELECT coalesce(max(id), 0) FROM drug_ownerships) AS own,
       (SELECT coalesce(max(id), 0) FROM drug_target_actions) AS dta
FROM gen_p p;

INSERT INTO technologies (id, name, drug_class)
SELECT fx.tech + 1, 'FX Technology', NULL FROM fx;

-- Equal names: O1/O2 and G2/G3.
INSERT INTO organisations (id, name)
SELECT fx.org + v.k, v.name FROM fx,
       (VALUES (1, 'FX Pharma'), (2, 'FX Pharma'), (3, 'FX Biotech')) v(k, name);

INSERT INTO targets (id, name)
SELECT fx.tgt + v.k, v.name FROM fx,
       (VALUES (1, 'FX-TGT-B'), (2, 'FX-TGT-A'), (3, 'FX-TGT-A')) v(k, name);

INSERT INTO diseases (id, name)
SELECT fx.dis + v.k, v.name FROM fx,
       (VALUES (1, 'FX rank-3 tie disease'), (2, 'FX rank-2 tie disease'),
               (3, 'FX rank-1 tie disease'), (4, 'FX rank-0 tie disease'),
               (5, 'FX approved-only disease'), (6, 'FX duplicate name'),
               (7, 'FX duplicate name')) v(k, name);

INSERT INTO drugs (id, bloupe_id, name, drug_status, drug_type, first_in_class, parent_id, technology_id)
SELECT fx.drug + v.k, v.bloupe_id, v.name, v.status, v.dtype, v.fic,
       pg_temp.fxid(v.parent, fx.drug), pg_temp.fxid(v.tech, fx.tech)
FROM fx,
     (VALUES (1, 'BLP-FX0001', 'FX tie drug', 'approved', 'small_molecule', true, NULL::bigint, 1::bigint),
             (2, 'BLP-FX0002', 'FX combination', 'phase3', 'combination', false, NULL, NULL),
             (3, 'BLP-FX0003', 'FX component A', 'phase2', 'monoclonal_antibody', NULL, 2, 900000001),
             (4, NULL, 'FX component B', NULL, NULL, NULL, 2, NULL),
             (5, 'BLP-FX0005', 'FX pipeline tie drug', 'phase3', 'adc', true, NULL, 1),
             (6, 'BLP-FX0006', 'FX orphan child', 'preclinical', 'peptide', false, 900000001, 1)
     ) v(k, bloupe_id, name, status, dtype, fic, parent, tech);

-- Approvals: D1 twice for X5 (one with no date; X5 also listed twice on A1), D1 for X6 (beats
-- a phase2_3 trial), every status including NULL, a missing drug, a missing disease, and an
-- indication whose approval does not exist.
INSERT INTO drug_approvals (id, drug_id, approval_status, approval_date)
SELECT fx.appr + v.k, pg_temp.fxid(v.drug, fx.drug), v.status, v.dt::date
FROM fx,
     (VALUES (1, 1, 'approved', '2015-06-01'), (2, 1, 'approved', NULL),
             (3, 2, 'pending', '2021-03-03'), (4, 3, 'withdrawn', '2011-11-11'),
             (5, 4, 'rejected', '2012-12-12'), (6, 5, NULL, NULL),
             (7, 900000001, 'approved', '2018-01-01'), (8, 2, 'approved', '2019-02-02')
     ) v(k, drug, status, dt);

INSERT INTO indications (id, drug_approval_id, disease_id)
SELECT fx.ind + row_number() OVER (ORDER BY v.ord), pg_temp.fxid(v.appr, fx.appr), pg_temp.fxid(v.dis, fx.dis)
FROM fx,
     (VALUES (1, 1, 5), (2, 1, 5), (3, 1, 6), (4, 2, 5), (5, 3, 2), (6, 4, 3), (7, 5, 4),
             (8, 6, 1), (9, 7, 1), (10, 8, 900000002), (11, 8, 7), (12, 900000001, 2)
     ) v(ord, appr, dis);

-- Trials T1..T15 (see the trial_diseases below for what each one is for).
INSERT INTO clinical_trials (id, nct_id, phase, overall_status, completion_date)
SELECT fx.trial + v.k, v.nct, v.phase, v.status, v.dt::date
FROM fx,
     (VALUES (1, 'NCT90000001', 'phase3', 'completed', '2019-03-31'),
             (2, 'NCT90000002', 'phase2_3', 'recruiting', NULL),
             (3, NULL, 'phase2', 'completed', '2016-01-15'),
             (4, 'NCT90000004', 'phase1_2', 'active_not_recruiting', '2021-07-01'),
             (5, 'NCT90000005', 'phase1', 'completed', '2012-05-05'),
             (6, 'NCT90000006', 'early_phase1', 'terminated', '2010-02-02'),
             (7, 'NCT90000007', 'na', 'completed', '2018-08-08'),
             (8, 'NCT90000008', NULL, 'unknown', NULL),
             (9, 'NCT90000009', 'Phase 2', 'completed', '2017-09-09'),
             (10, 'NCT90000010', 'phase4', 'withdrawn', NULL),
             (11, 'NCT90000011', 'phase4', NULL, '2022-01-01'),
             (12, NULL, 'phase3', 'completed', '2020-12-31'),
             (13, 'NCT90000013', 'phase2', 'recruiting', NULL),
             (14, 'NCT90000014', 'phase3', 'completed', '2015-04-04'),
             (15, 'NCT90000015', 'phase2_3', 'completed', '2014-04-04')
     ) v(k, nct, phase, status, dt);

-- T1/T2 tie on X1 (rank 3; T2 lists X1 twice), T3/T4 on X2, T5/T6 on X3, T7/T8/T9 on X4;
-- T10 is withdrawn and T11 has a NULL status (both excluded); T12 has no disease;
-- T13 only a missing disease; T14/T15 give D5 phase3 on X1 and phase2_3 on X2.
INSERT INTO trial_diseases (id, clinical_trial_id, disease_id)
SELECT fx.td + row_number() OVER (ORDER BY v.ord), fx.trial + v.trial, pg_temp.fxid(v.dis, fx.dis)
FROM fx,
     (VALUES (1, 1, 1), (2, 2, 1), (3, 2, 1), (4, 2, 6), (5, 2, 7), (6, 3, 2), (7, 4, 2),
             (8, 5, 3), (9, 6, 3), (10, 7, 4), (11, 8, 4), (12, 9, 4), (13, 10, 1), (14, 10, 5),
             (15, 11, 1), (16, 13, 900000002), (17, 14, 1), (18, 15, 2)
     ) v(ord, trial, dis);

-- Arms A1..A20: every arm type, NULL included; A20 belongs to a trial that does not exist.
INSERT INTO trial_arms (id, clinical_trial_id, arm_type)
SELECT fx.arm + v.k, pg_temp.fxid(v.trial, fx.trial), v.arm_type
FROM fx,
     (VALUES (1, 1, 'experimental'), (2, 1, 'placebo_comparator'),
             (3, 2, 'experimental'), (4, 2, 'active_comparator'),
             (5, 3, 'experimental'), (6, 3, 'sham_comparator'),
             (7, 4, 'other'), (8, 4, NULL),
             (9, 5, 'experimental'), (10, 6, 'experimental'), (11, 7, 'experimental'),
             (12, 8, 'experimental'), (13, 9, 'experimental'), (14, 10, 'experimental'),
             (15, 11, 'experimental'), (16, 12, 'experimental'), (17, 13, 'experimental'),
             (18, 14, 'experimental'), (19, 15, 'experimental'), (20, 900000001, 'experimental')
     ) v(k, trial, arm_type);

-- Interventions I1..I21: I1 and I2 are both D1 (used together in A1), I3 is no drug,
-- I7 a drug that does not exist.
INSERT INTO interventions (id, drug_id)
SELECT fx.intv + v.k, pg_temp.fxid(v.drug, fx.drug)
FROM fx,
     (VALUES (1, 1::bigint), (2, 1), (3, NULL), (4, 1), (5, 5), (6, 1), (7, 900000001), (8, 1),
             (9, 1), (10, 1), (11, 1), (12, 1), (13, 1), (14, 1), (15, 1), (16, 2), (17, 3),
             (18, 5), (19, 5), (20, 1), (21, 4)
     ) v(k, drug);

-- Arm links: D5 is a combination partner in A3 and an active comparator (is_investigational
-- NULL) in A4; A17 also links a missing intervention.
INSERT INTO trial_arm_interventions (id, trial_arm_id, intervention_id, is_investigational)
SELECT fx.tai + row_number() OVER (ORDER BY v.ord), fx.arm + v.arm, pg_temp.fxid(v.intv, fx.intv), v.inv
FROM fx,
     (VALUES (1, 1, 1, true), (2, 1, 2, true), (3, 2, 3, false), (4, 3, 4, true),
             (5, 3, 5, false), (6, 4, 5, NULL), (7, 5, 6, true), (8, 6, 7, false),
             (9, 7, 8, true), (10, 8, 8, NULL), (11, 9, 9, true), (12, 9, 21, true),
             (13, 10, 10, false), (14, 11, 11, true), (15, 12, 12, true), (16, 13, 13, true),
             (17, 14, 14, true), (18, 15, 15, true), (19, 16, 16, true), (20, 17, 17, true),
             (21, 17, 900000001, true), (22, 18, 18, true), (23, 19, 19, true), (24, 20, 20, true)
     ) v(ord, arm, intv, inv);

-- Results: R2 has every nullable column NULL; R4 is on the withdrawn trial, R5 on the arm
-- whose trial is missing, R6 on a missing arm.
INSERT INTO trial_arm_results (id, trial_arm_id, endpoint, value, unit, ci_lower, ci_upper,
                               p_value, participants, updated_at)
SELECT fx.res + v.k, pg_temp.fxid(v.arm, fx.arm), v.endpoint, v.value, v.unit, v.lo, v.hi, v.p,
       v.n, v.ts::timestamptz
FROM fx,
     (VALUES (1, 1, 'Overall survival', 14.2, 'months', 12.1, 16.3, 0.003, 250, '2023-01-01 00:00:00+00'),
             (2, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2023-01-02 00:00:00+00'),
             (3, 3, 'Objective response rate', 41.5, '%', NULL, NULL, 0.04, 120, '2023-01-03 00:00:00+00'),
             (4, 14, 'Overall survival', 9.1, 'months', 7.0, 11.0, 0.2, 80, '2023-01-04 00:00:00+00'),
             (5, 20, 'Overall survival', 10.0, 'months', NULL, NULL, NULL, 60, '2023-01-05 00:00:00+00'),
             (6, 900000001, 'Overall survival', 11.0, 'months', NULL, NULL, NULL, 60, '2023-01-06 00:00:00+00'),
             (7, 16, 'Progression-free survival', 6.3, 'months', 5.1, 7.7, 0.01, 300, '2023-01-07 00:00:00+00'),
             (8, 6, 'Pain score change', -1.2, 'points', -2.0, -0.4, 0.03, 90, '2023-01-08 00:00:00+00'),
             (9, 9, 'Safety', 3.0, 'events', NULL, NULL, NULL, 24, '2023-01-09 00:00:00+00')
     ) v(k, arm, endpoint, value, unit, lo, hi, p, n, ts);

-- Publications: P2 names a missing trial, P3 has every nullable column NULL, P4 is about the
-- trial with no disease.
INSERT INTO publications (id, pmid, publication_date, clinical_trial_id)
SELECT fx.pub + v.k, v.pmid, v.dt::date, pg_temp.fxid(v.trial, fx.trial)
FROM fx,
     (VALUES (1, '90000001', '2020-05-01', 1::bigint), (2, '90000002', '2021-01-01', 900000001),
             (3, NULL, NULL, NULL), (4, '90000004', '2019-01-01', 12)
     ) v(k, pmid, dt, trial);

-- Outcomes: NULL and missing drugs and diseases, one with every nullable column NULL, one on
-- a publication that does not exist.
INSERT INTO publication_outcomes (id, publication_id, drug_id, disease_id, endpoint, value, unit,
                                  ci_lower, ci_upper, p_value, participants, updated_at)
SELECT fx.outc + v.k, pg_temp.fxid(v.pub, fx.pub), pg_temp.fxid(v.drug, fx.drug),
       pg_temp.fxid(v.dis, fx.dis), v.endpoint, v.value, v.unit, v.lo, v.hi, v.p, v.n,
       v.ts::timestamptz
FROM fx,
     (VALUES (1, 1::bigint, 1::bigint, 1::bigint, 'Overall survival', 15.0, 'months', 13.0, 17.0, 0.001, 500, '2023-02-01 00:00:00+00'),
             (2, 2, 1, 2, 'Objective response rate', 38.0, '%', NULL, NULL, 0.02, 150, '2023-02-02 00:00:00+00'),
             (3, 3, NULL, 1, 'Overall survival', 12.0, 'months', NULL, NULL, NULL, NULL, '2023-02-03 00:00:00+00'),
             (4, 1, 1, NULL, 'Hazard ratio for death', 0.7, 'HR', 0.55, 0.89, 0.004, 500, '2023-02-04 00:00:00+00'),
             (5, 1, 900000001, 1, 'Overall survival', 11.0, 'months', NULL, NULL, NULL, 40, '2023-02-05 00:00:00+00'),
             (6, 1, 1, 900000002, 'Overall survival', 10.0, 'months', NULL, NULL, NULL, 40, '2023-02-06 00:00:00+00'),
             (7, 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2023-02-07 00:00:00+00'),
             (8, 900000001, 1, 1, 'Overall survival', 16.0, 'months', NULL, NULL, NULL, 70, '2023-02-08 00:00:00+00'),
             (9, 4, 5, 2, 'Progression-free survival', 8.8, 'months', 7.5, 10.1, 0.03, 210, '2023-02-09 00:00:00+00')
     ) v(k, pub, drug, dis, endpoint, value, unit, lo, hi, p, n, ts);

-- Ownership: D1 owned by O1 on two rows, by O2 (same name as O1) and formerly by O3;
-- D2 by O3 on a current and a former row; D5 by an organisation that does not exist.
INSERT INTO drug_ownerships (id, drug_id, organisation_id, is_current)
SELECT fx.own + row_number() OVER (ORDER BY v.ord), fx.drug + v.drug, pg_temp.fxid(v.org, fx.org), v.cur
FROM fx,
     (VALUES (1, 1, 1, true), (2, 1, 1, true), (3, 1, 2, true), (4, 1, 3, false),
             (5, 2, 3, true), (6, 2, 3, false), (7, 5, 900000001, true), (8, 3, 1, false)
     ) v(ord, drug, org, cur);

-- Targets: D1 has two primary targets (a tie broken by name: FX-TGT-A before FX-TGT-B) and a
-- third whose name equals one of them; D2 has no primary; D5's primary target does not exist.
INSERT INTO drug_target_actions (id, drug_id, target_id, is_primary)
SELECT fx.dta + row_number() OVER (ORDER BY v.ord), fx.drug + v.drug, pg_temp.fxid(v.tgt, fx.tgt), v.prim
FROM fx,
     (VALUES (1, 1, 1, true), (2, 1, 2, true), (3, 1, 3, false), (4, 2, 1, false),
             (5, 2, 3, false), (6, 5, 900000001, true), (7, 5, 2, false)
     ) v(ord, drug, tgt, prim);

-- -------------------------------------------------------------------------------------------
-- Clean up the session-local helpers and give the planner statistics.
-- -------------------------------------------------------------------------------------------
DROP TABLE fx, gen_arm, gen_trial, gen_p;
DROP FUNCTION pg_temp.fxid(bigint, bigint);
DROP FUNCTION pg_temp.pick(bigint, bigint, bigint, double precision);
DROP FUNCTION pg_temp.u(bigint, bigint);

ANALYZE drugs, diseases, organisations, targets, technologies, drug_approvals, indications,
        clinical_trials, trial_arms, interventions, trial_arm_interventions, trial_diseases,
        trial_arm_results, publications, publication_outcomes, drug_ownerships,
        drug_target_actions;
