"""survey-pipeline: resident-panel waves to the indicator tables of the annual report.

`SurveyDesign` (the analyst API, see `survey_pipeline.core.design`) is imported on
first use, so stages that need no statistics start without loading the core.
"""

__version__ = "0.1.0"

__all__ = ["SurveyDesign", "__version__"]


def __getattr__(name: str):
    if name == "SurveyDesign":
        from survey_pipeline.core.design import SurveyDesign

        return SurveyDesign
    raise AttributeError(f"module 'survey_pipeline' has no attribute {name!r}")
