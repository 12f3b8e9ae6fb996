-- dbt's not_null: every row whose value is NULL is a failure.
SELECT {{ column }} AS null_field
FROM {{ model }}
WHERE {{ column }} IS NULL
