"""survey-pipeline: resident-panel waves to the indicator tables of the annual report."""

from survey_pipeline.core.design import SurveyDesign

__version__ = "0.1.0"

__all__ = ["SurveyDesign", "__version__"]
