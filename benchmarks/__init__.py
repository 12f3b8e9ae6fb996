"""The benchmark: refresh cost against the bare query and against dbt, and what readers see
while marts refresh. Run it from the repository root:

    .venv/bin/python -m benchmarks.run --scale 60

It starts its own throwaway PostgreSQL server, so it never touches a real database.
Results (JSON and a PNG chart) go to benchmarks/results/.
"""
