"""The pipeline's stages, one sub-package each, in the order they run.

ingest -> validate -> weight -> estimate -> report. Each sub-package's `stage`
module is the thin shell the CLI and DVC run (`run(store, spec, params, base_dir)`),
reading and writing `outputs/<stage>/` through `survey_pipeline.artifacts`; the
stage's private helpers live next to it. What several stages share (settings,
spec, table contracts, the statistical core) lives one level up, in
`survey_pipeline/`, so no stage imports another.
"""
