-- dbt's accepted_values: each distinct value (NULL ignored) outside the list is one failure.
WITH all_values AS (
    SELECT {{ column }} AS value_field, count(*) AS n_records
    FROM {{ model }}
    GROUP BY {{ column }}
)
SELECT *
FROM all_values
WHERE value_field NOT IN ({{ values }})
