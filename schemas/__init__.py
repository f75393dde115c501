"""The JSON Schemas of the questionnaire spec and of the pipeline's outputs, installed with the
package as `survey_pipeline.schemas` (package data); written by `python -m survey_pipeline.schema_files`."""
