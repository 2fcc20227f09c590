"""Sweeps: many ordinary runs over a grid of settings, ranked against SLAs and a GPU budget.

One concept per module: `spec` (the sweep file), `axes` (grid points -> run options), `evaluate`
(one point -> one record, pure), `executors` (serial, process pool, Ray), `metrics` (what a record
holds), `rank` (constraints, penalties, ranking, Pareto), `results` (the output directory),
`table` and `html` (what a person reads), `presets`, `cli`.
"""
