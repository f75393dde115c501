"""Report stage: validated output tables, the annual-report table, Excel, figures and the method note.

`stage.run()` is the shell (I/O through `survey_pipeline.artifacts`); `tables`,
`formatting`, `figures` and `method_note` are pure builders the shell calls.
"""
