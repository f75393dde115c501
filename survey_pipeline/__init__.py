"""survey-pipeline: resident-panel waves to the indicator tables of the annual report."""

__version__ = "0.1.0"
