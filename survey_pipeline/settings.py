"""`params.yaml` as typed settings, and the settings record every stage writes next to its outputs.

One pydantic model per params section (`extra="forbid"`, literal choices, strict
types: a bool is never a number, a whole number is an int, a float is finite)
and `Params`, the whole file. `load_params` reads the file with the strict YAML
loader (a repeated key is an error) and turns the first validation error into a
one-line `ParamsError` naming the key path and the problem. Stages import their
settings from here, never from each other.

Results carry their settings: a stage writes `settings.json` into its output
folder (`write_record`): the sections it worked with, the ones its upstream
outputs were made with included, and a fingerprint (sha256 of their canonical
JSON). A later stage takes upstream settings from those records
(`upstream_settings`), never from params.yaml, and refuses outputs whose recorded
settings differ from the current parameters, naming the setting.
"""

from __future__ import annotations

import hashlib
import json
import math
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast, get_args, get_origin

import annotated_types
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from survey_pipeline.artifacts import SchemaCheckError, read_json, write_json
from survey_pipeline.contracts import SettingsRecord
from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.numbers import number_problem
from survey_pipeline.software import software_versions
from survey_pipeline.stage_graph import RECORD
from survey_pipeline.strict_yaml import StrictYamlError, load_strict

if TYPE_CHECKING:
    from survey_pipeline.spec import QuestionnaireSpec

TOTAL = "total"
"""The breakdown every estimate has besides the background variables: the whole population."""
WAVE_PLACEHOLDER = "{wave}"
RULE_UPSTREAM = "upstream_settings"

CIMethod = Literal["beta", "logit", "wilson", "wald"]
WeightMethod = Literal["rake", "poststratify"]
MissingBackground = Literal["exclude", "fail"]
BaseWeightRule = Literal["auto", "require", "ignore"]
GxFailure = Literal["error", "warn"]
# great-expectations: off (not imported), checkpoint (gx_result.json), full (checkpoint + Data Docs).
GxLevel = Literal["off", "checkpoint", "full"]
FigureFormat = Literal["png", "svg"]


def rule_error(problem: str, key: str | None = None) -> PydanticCustomError:
    """A validation error with our own wording; `key` names a field when a model-level check raises it."""
    return PydanticCustomError("params_rule", "{problem}", {"problem": problem, "key": key})


def _distinct(values: tuple) -> tuple:
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise rule_error(f"{repeated[0]!r} is listed twice")
    return values


Text = Annotated[str, Field(min_length=1, pattern=r"\S")]
"""A string that is not blank."""
Names = Annotated[tuple[str, ...], Field(strict=False), AfterValidator(_distinct)]
"""A list of distinct names (e.g. variables)."""
Years = Annotated[tuple[int, ...], Field(strict=False), AfterValidator(_distinct)]
"""A list of distinct whole numbers (e.g. waves)."""


class Section(BaseModel):
    """A params.yaml section: unknown keys, wrong types and values out of range are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class IngestSettings(Section):
    """`ingest:` where the raw wave files are and how their names carry the wave."""

    raw_dir: Text = Field(description="a folder path relative to the project root")
    file_pattern: Text = Field(description=f"a file name pattern with one {WAVE_PLACEHOLDER}")

    @model_validator(mode="after")
    def _one_placeholder(self) -> IngestSettings:
        if self.file_pattern.count(WAVE_PLACEHOLDER) != 1:
            raise rule_error(
                f"expected a file name pattern with one {WAVE_PLACEHOLDER}, got {self.file_pattern!r}", "file_pattern"
            )
        return self


class ValidateSettings(Section):
    """`validate:` the quarantine limit and what a failed great-expectations checkpoint does."""

    max_quarantine_share: float = Field(0.02, ge=0, le=1, description="a share")
    gx_failure: GxFailure = "error"
    gx_level: GxLevel = "full"

    @model_validator(mode="before")
    @classmethod
    def _bare_off(cls, data: Any) -> Any:
        """YAML 1.1 (PyYAML) reads a bare `off` as false."""
        if isinstance(data, Mapping) and data.get("gx_level") is False:
            return {**data, "gx_level": "off"}
        return data


class WeightSettings(Section):
    """`weight:` calibration to the population (see `survey_pipeline.stages.weight.stage`)."""

    method: WeightMethod = "rake"
    margins: Annotated[Names, Field(min_length=1)]
    population_file: Text = Field(description="the path of the margins file")
    max_iter: int = Field(100, ge=1)
    tol: float = Field(1e-10, gt=0, lt=1, description="a share of the sum of weights")
    trim_lower: float | None = Field(None, ge=0, lt=1, description="a multiple of the mean weight")
    trim_upper: float | None = Field(None, gt=1, description="a multiple of the mean weight")
    trim_max_rounds: int = Field(50, ge=1)
    missing_background: MissingBackground = "exclude"
    margin_total_tolerance: float = Field(0.0, ge=0, lt=0.1, description="a relative difference")
    margin_tolerance: float = Field(1e-6, gt=0, lt=0.01, description="a relative difference")
    base_weight: BaseWeightRule = "auto"
    poststratify_cells: Annotated[Names, Field(min_length=1)] | None = None
    cells_file: Text | None = Field(None, description="the path of the population cells file")

    @model_validator(mode="after")
    def _poststratification_inputs(self) -> WeightSettings:
        if self.method == "poststratify":
            if self.cells_file is None:
                raise rule_error("post-stratification needs the population cells file", "cells_file")
            if self.poststratify_cells is None:
                raise rule_error("missing (expected a non-empty list of names)", "poststratify_cells")
        return self

    @property
    def trimming(self) -> bool:
        return self.trim_lower is not None or self.trim_upper is not None

    @property
    def weighting_variables(self) -> tuple[str, ...]:
        return self.margins if self.method == "rake" else self.poststratify_cells or ()

    @property
    def target_file(self) -> str:
        """The population file the weights are calibrated to (margins, or cells when post-stratifying)."""
        return self.cells_file if self.method == "poststratify" and self.cells_file else self.population_file

    def check_against(self, spec: QuestionnaireSpec) -> None:
        for key, names in (("margins", self.margins), ("poststratify_cells", self.poststratify_cells or ())):
            for name in names:
                if name not in spec.background:
                    raise ParamsError(
                        f"weight.{key}", f"'{name}' is not a background variable ({', '.join(spec.background)})"
                    )


class SuppressionRule(Section):
    """`estimate.suppression:` thresholds of the publication rule (`survey_pipeline.reliability`;
    defaults: NCHS standards for proportions)."""

    min_n: int = Field(30, ge=0)
    min_n_eff: float = Field(30.0, ge=0)
    max_ci_width: float = Field(0.30, ge=0, le=1, description="a CI width on the proportion scale")
    max_relative_ci_width: float = Field(1.30, ge=0)
    relative_width_from: float = Field(0.05, ge=0, le=1, description="a CI width on the proportion scale")
    flag_df_below: float = Field(8.0, ge=0)


SaeMethod = Literal["REML", "ML", "FH"]  # = survey_pipeline.sae.METHODS (tested)
BenchmarkMethod = Literal["ratio", "difference", "none"]


class SmallAreaSettings(Section):
    """`estimate.small_area:` Fay-Herriot estimates for the areas of the spec's `area_variable`
    (survey_pipeline/stages/estimate/small_area.py); absent means switched off."""

    enabled: bool = False
    method: SaeMethod = "REML"
    covariates_file: Text = "data/population/wijk_covariates.csv"
    covariates: Annotated[Names, Field(min_length=1)] = (
        "pct_18_34",
        "pct_65_plus",
        "pct_single_person_households",
        "pct_low_income_households",
        "pct_migration_background",
    )
    benchmarking: BenchmarkMethod = "ratio"
    bootstrap: int = Field(200, ge=1)
    seed: int = Field(20211115, ge=0)
    min_explained_variance: float = Field(0.2, ge=0, le=1)


class EstimateSettings(Section):
    """`estimate:` interval method and level, breakdowns, calibration check, publication rule,
    small-area estimates."""

    ci_method: CIMethod = "beta"
    level: float = Field(0.95, gt=0, lt=1)
    breakdowns: Names
    calibration_tolerance: float = Field(1e-6, gt=0, lt=1)
    suppression: SuppressionRule = SuppressionRule()
    small_area: SmallAreaSettings = SmallAreaSettings()
    registrations_file: Text | None = Field(
        None, description="the path of the registration figures (survey_pipeline/registrations.py)"
    )

    @model_validator(mode="after")
    def _total_is_implied(self) -> EstimateSettings:
        if TOTAL in self.breakdowns:
            raise rule_error(f"'{TOTAL}' is always included; list only background variables", "breakdowns")
        return self

    def check_against(self, spec: QuestionnaireSpec) -> None:
        for name in self.breakdowns:
            if name not in spec.background:
                raise ParamsError("estimate.breakdowns", f"'{name}' is not a background variable of the spec")
        if self.small_area.enabled and spec.area_variable is None:
            raise ParamsError(
                "estimate.small_area.enabled",
                "small-area estimates need the spec's survey.area_variable: declare it or switch small_area off",
            )
        if self.small_area.enabled and spec.area_variable not in self.breakdowns:
            raise ParamsError(
                "estimate.small_area.enabled",
                f"small-area estimates are made from the '{spec.area_variable}' breakdown: list it in "
                "estimate.breakdowns or switch small_area off",
            )

    def check_registrations(self, spec: QuestionnaireSpec) -> None:
        """Registration figures declared in the spec need the file with their values."""
        if spec.registrations and self.registrations_file is None:
            raise ParamsError(
                "estimate.registrations_file",
                f"the spec declares registration figures ({', '.join(r.id for r in spec.registrations)}): "
                "name the file with their values",
            )


class ReportSettings(Section):
    """`report:` the year the annual-report table is for, its window of waves and how figures are written.

    The columns follow from the report year, as the budget prints them: "Behaald" for the
    `achieved_count` years before `year`, "Beoogd" for `target_count` years from `year` on (the 2022
    budget: year 2022, Behaald 2020, 2021; Beoogd 2022, 2023). `year` is the first Beoogd year: a budget
    written before the current year's wave also sets the current year's target (the 2021 budget, Behaald
    2019; Beoogd 2020, 2021, has year 2020). A measured wave outside the window is an error unless
    `exclude_waves` leaves it out on purpose, with the reason printed under the table.
    """

    year: int = Field(
        ge=1900, le=2999, description="the report (budget) year: the first Beoogd column, the Behaald columns before it"
    )
    achieved_count: int = Field(ge=1, le=20)
    target_count: int = Field(ge=0, le=20)
    exclude_waves: Annotated[
        dict[int, Text],
        Field(strict=False, description="a mapping wave -> the Dutch reason it is left out of the table"),
        AfterValidator(lambda reasons: dict(sorted(reasons.items()))),
    ] = Field(default_factory=dict)
    decimals: int = Field(0, ge=0, le=3)
    figure_formats: Annotated[
        tuple[FigureFormat, ...],
        Field(strict=False, min_length=1),
        AfterValidator(lambda formats: tuple(dict.fromkeys(formats))),
    ] = ("svg",)
    # SVG only unless PNG is asked for: the HTML report shows the SVG, and a PNG costs as much again to draw.

    @property
    def achieved_waves(self) -> tuple[int, ...]:
        """The "Behaald" columns: the `achieved_count` years before the report year."""
        return tuple(range(self.year - self.achieved_count, self.year))

    @property
    def target_years(self) -> tuple[int, ...]:
        """The "Beoogd" columns: `target_count` years from the report year on."""
        return tuple(range(self.year, self.year + self.target_count))

    @property
    def window_text(self) -> str:
        """The window as named in messages: "Behaald 2020-2021 (report.year 2022, report.achieved_count 2)"."""
        first, last = self.achieved_waves[0], self.achieved_waves[-1]
        span = str(first) if first == last else f"{first}-{last}"
        return f"Behaald {span} (report.year {self.year}, report.achieved_count {self.achieved_count})"

    def check_against(self, spec: QuestionnaireSpec) -> None:
        """Every "Behaald" column is a wave the spec measured or declares not measured (its column then
        shows the reason), never a silent column of dashes; every measured wave is shown or left out on
        purpose (`exclude_waves`), never dropped because the year was not moved on."""
        for wave in self.achieved_waves:
            if wave not in spec.not_measured and wave not in spec.waves:
                raise ParamsError(
                    "report.year",
                    f"the window {self.window_text} holds wave {wave}, which is neither measured (survey.waves "
                    f"{list(spec.waves)}) nor declared not measured (survey.not_measured) in the spec",
                )
        for wave in self.exclude_waves:
            if wave not in spec.waves:
                raise ParamsError(
                    f"report.exclude_waves.{wave}", f"wave {wave} is not measured (survey.waves {list(spec.waves)})"
                )
            if wave in self.achieved_waves:
                raise ParamsError(
                    f"report.exclude_waves.{wave}",
                    f"wave {wave} is in the window {self.window_text}; a wave is shown or left out",
                )
        for wave in spec.waves:
            if wave not in self.achieved_waves and wave not in self.exclude_waves:
                raise ParamsError(
                    "report.year",
                    f"measured wave {wave} (survey.waves) is outside the window {self.window_text}: move the "
                    f"window or leave the wave out on purpose under report.exclude_waves with the reason",
                )


class Params(Section):
    """The whole params.yaml: the spec's path and one section per stage."""

    spec: Text = Field(description="the path of the questionnaire spec")
    ingest: IngestSettings
    validate_: ValidateSettings = Field(alias="validate")  # `validate` would shadow BaseModel.validate
    weight: WeightSettings
    estimate: EstimateSettings
    report: ReportSettings
    _file_name: str = PrivateAttr("params.yaml")

    @property
    def file_name(self) -> str:
        """The name of the file these parameters were read from, for messages."""
        return self._file_name

    def section(self, name: str) -> Section:
        """A section by its name in params.yaml."""
        return getattr(self, _by_key(Params)[name][0])

    def check_against(self, spec: QuestionnaireSpec) -> None:
        """The checks that need the spec: named background variables and report waves exist."""
        self.weight.check_against(spec)
        self.estimate.check_against(spec)
        self.estimate.check_registrations(spec)
        self.report.check_against(spec)


def _by_key(model: type[BaseModel]) -> dict[str, tuple[str, FieldInfo]]:
    """A model's fields by their key in the YAML (the alias, where there is one): key -> (attribute, field)."""
    return {field.alias or name: (name, field) for name, field in model.model_fields.items()}


SECTIONS: dict[str, type[Section]] = {
    # every field of Params but `spec` is annotated with its section's model
    key: cast("type[Section]", field.annotation)
    for key, (_, field) in _by_key(Params).items()
    if key != "spec"
}


# ---------------------------------------------------------------------------
# Reading params.yaml


def load_params(path: str | Path) -> Params:
    """Read and check the whole params file; any problem is a one-line `ParamsError` naming file and key."""
    path = Path(path)
    try:
        raw = load_strict(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError("<file>", "file not found", file=str(path)) from None
    except StrictYamlError as exc:
        raise ParamsError(exc.path, exc.problem, file=str(path)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParamsError("<file>", f"not valid YAML ({first})", file=str(path)) from None
    params = parse_params(raw, file=str(path))
    params._file_name = path.name
    return params


def parse_params(raw: Any, *, file: str | None = None) -> Params:
    """`Params` from the parsed YAML; the first validation error becomes a `ParamsError`."""
    if not isinstance(raw, Mapping):
        raise ParamsError("<root>", "expected a mapping of sections", file=file)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise params_error(exc, raw, Params, file=file) from None


def parse_section(model: type[Section], raw: Any, prefix: str) -> Section:
    """One section (e.g. a stage's own section in a test); errors name `prefix.key`."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise params_error(exc, raw, model, prefix=(prefix,)) from None


def params_error(
    exc: ValidationError, raw: Any, model: type[BaseModel], *, prefix: tuple[str, ...] = (), file: str | None = None
) -> ParamsError:
    """The first error of `exc` as one line: `params key 'weight.max_iter': expected ..., got 100.0`."""
    error = exc.errors(include_url=False)[0]
    keys = tuple(str(part) for part in error["loc"] if not isinstance(part, int))
    ctx = error.get("ctx") or {}
    if error["type"] == "params_rule" and ctx.get("key"):
        keys = (*keys, ctx["key"])
    key = ".".join((*prefix, *keys)) or "<root>"
    return ParamsError(key, _problem(error, keys, raw, model, top=model is Params and len(keys) == 1), file=file)


def _problem(error: Mapping[str, Any], keys: tuple[str, ...], raw: Any, model: type[BaseModel], *, top: bool) -> str:
    kind = error["type"]
    if kind == "params_rule":
        return error["ctx"]["problem"]
    if not keys:
        return f"expected a mapping, got {raw!r}"
    owner, field = _field(model, keys)
    if kind == "extra_forbidden":
        known = ", ".join(_by_key(owner)) if top else ", ".join(sorted(_by_key(owner)))
        return f"unknown {'section' if top else 'key'} (known: {known})"
    if field is None:
        return str(error["msg"])
    section = isinstance(_plain(field.annotation), type) and issubclass(_plain(field.annotation), BaseModel)
    if kind == "missing":
        return "missing section (expected a mapping)" if section else f"missing (expected {_expected(field)})"
    if section:
        return f"expected a mapping, got {error['input']!r}"
    value = _value_at(raw, keys)
    if get_origin(_plain(field.annotation)) is Literal:
        return f"must be one of {', '.join(get_args(_plain(field.annotation)))}, got {value!r}"
    return f"expected {_expected(field)}, got {value!r}{_text_number_hint(value, field)}"


def _field(model: type[BaseModel], keys: Sequence[str]) -> tuple[type[BaseModel], FieldInfo | None]:
    """The model that owns the last of `keys` and its field (None when it has no such field)."""
    owner, field = model, None
    for index, key in enumerate(keys):
        field = _by_key(owner).get(key, (key, None))[1]
        if field is None or index == len(keys) - 1:
            break
        owner = _plain(field.annotation)
    return owner, field


def _plain(annotation: Any) -> Any:
    """`Annotated[X, ...] | None` -> X."""
    if get_origin(annotation) is Annotated:
        return _plain(get_args(annotation)[0])
    if _optional(annotation):
        return _plain(next(arg for arg in get_args(annotation) if arg is not type(None)))
    return annotation


def _optional(annotation: Any) -> bool:
    """`X | None`."""
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _value_at(raw: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
    return raw


def _expected(field: FieldInfo) -> str:
    """What a field takes, from its type and constraints: "a whole number >= 1", "a share in [0, 1]"."""
    constraints = (
        ("Ge", annotated_types.Ge, "ge"),
        ("Gt", annotated_types.Gt, "gt"),
        ("Le", annotated_types.Le, "le"),
        ("Lt", annotated_types.Lt, "lt"),
        ("MinLen", annotated_types.MinLen, "min_length"),
    )
    bounds = {
        name: getattr(m, attribute)
        for m in _metadata(field)
        for name, kind, attribute in constraints
        if isinstance(m, kind)
    }
    optional = " (or null)" if _optional(field.annotation) else ""
    annotation = _plain(field.annotation)
    if get_origin(annotation) is Literal:
        return f"one of {', '.join(get_args(annotation))}{optional}"
    if get_origin(annotation) is tuple:
        item = get_args(annotation)[0]
        noun = (
            f"list from {', '.join(get_args(item))}"
            if get_origin(item) is Literal
            else "list of whole numbers"
            if item is int
            else "list of names"
        )
        return f"a {'non-empty ' if bounds.get('MinLen') else ''}{noun}{optional}"
    if annotation is int:
        low = bounds.get("Ge", bounds.get("Gt", -math.inf))
        high = bounds.get("Le")
        return f"a whole number {f'>= {low}' if high is None else f'from {low} to {high}'}{optional}"
    if annotation is float:
        low, high = bounds.get("Ge", bounds.get("Gt", -math.inf)), bounds.get("Le", bounds.get("Lt", math.inf))
        left = "[" if "Ge" in bounds else "("
        right = "]" if "Le" in bounds else ")"
        return f"{field.description or 'a number'} in {left}{low:g}, {high:g}{right}{optional}"
    return f"{field.description or 'text'}{optional}"


def _metadata(field: FieldInfo) -> list[Any]:
    """Constraints of the field and of its type (`Annotated[..., Field(min_length=1)]` inside `X | None`)."""
    found = list(field.metadata)
    pending = list(get_args(field.annotation))
    while pending:
        arg = pending.pop()
        if get_origin(arg) is Annotated:
            found += [m for extra in arg.__metadata__ for m in getattr(extra, "metadata", [extra])]
            pending.append(get_args(arg)[0])
    return found


def _text_number_hint(value: Any, field: FieldInfo) -> str:
    """Why YAML read a number as text: quotes, or an exponent without a decimal point (`1e-10`)."""
    if (
        _plain(field.annotation) not in (int, float)
        or not isinstance(value, str)
        or number_problem(value.strip(), whole=False) is not None
    ):
        return ""
    return (
        " (YAML read it as text: remove any quotes; write an exponent with a decimal point and a sign, "
        "e.g. 1.0e-10 or 1.0e+2)"
    )


# ---------------------------------------------------------------------------
# Settings records: what a stage's outputs were made with


def fingerprint(sections: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of serialised sections (sorted keys, no spaces)."""
    text = json.dumps(sections, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_record(
    folder: Path, sections: Mapping[str, Section], upstream_software: Mapping[str, Any] | None = None
) -> None:
    """Write `settings.json`: the sections the outputs in `folder` were made with, their fingerprint, and the
    software: `upstream_software` (per upstream stage, `recorded_software`) plus this process's versions under
    the stage's own section, the last of `sections` (`{**upstream, "<stage>": settings}`), so the method note
    names what made the numbers, not what reports them."""
    dumped = {name: sections[name].model_dump(mode="json") for name in sorted(sections)}
    software = {**(upstream_software or {}), list(sections)[-1]: software_versions()}
    write_json(
        {"sections": dumped, "fingerprint": fingerprint(dumped), "software": dict(sorted(software.items()))},
        folder / RECORD,
        SettingsRecord,
    )


def recorded_software(folders: Mapping[str, Path]) -> dict[str, Any]:
    """Per stage, the software recorded in the settings records of `folders` (upstream stages included);
    call after `upstream_settings`, which refuses a missing or altered record."""
    software: dict[str, Any] = {}
    for folder in folders.values():
        software.update(read_json(folder / RECORD, SettingsRecord)["software"])
    return software


def read_record(folder: Path, stage: str) -> dict[str, Section]:
    """The typed sections recorded in `folder/settings.json`; a missing, altered or unreadable record is refused."""
    path = folder / RECORD
    rerun = f"rerun the {stage} stage"
    if not folder.is_dir():
        raise InputError(f"missing stage output; run the {stage} stage first", file=str(folder), rule="stage_input")
    if not path.exists():
        raise InputError(
            f"{folder} has no record of the settings it was made with; {rerun}",
            file=str(path),
            rule=RULE_UPSTREAM,
        )
    try:
        record = read_json(path, SettingsRecord)
    except SchemaCheckError:  # e.g. a record of an older version, without the software it was made with
        raise InputError(
            f"the settings record is not one this version writes; {rerun}", file=str(path), rule=RULE_UPSTREAM
        ) from None
    sections = record.get("sections") if isinstance(record, Mapping) else None
    if not isinstance(sections, Mapping) or record.get("fingerprint") != fingerprint(sections):
        raise InputError(
            f"the settings record does not match its fingerprint; {rerun}", file=str(path), rule=RULE_UPSTREAM
        )
    try:
        return {name: SECTIONS[name].model_validate(body) for name, body in sections.items()}
    except (KeyError, ValidationError):
        raise InputError(
            f"the settings record is not one this version writes; {rerun}", file=str(path), rule=RULE_UPSTREAM
        ) from None


def upstream_settings(folders: Mapping[str, Path], params: Params) -> dict[str, Section]:
    """The settings the upstream outputs were made with (stage -> its output folder, in pipeline order).

    Refuses (exit 2) outputs made with settings that differ from the current
    parameters, naming the first such setting, so that nothing downstream is
    made from, or describes, settings the upstream numbers were not made with.
    """
    merged: dict[str, Section] = {}
    for stage, folder in folders.items():
        for name, recorded in read_record(folder, stage).items():
            difference = _first_difference(
                params.section(name).model_dump(mode="json"), recorded.model_dump(mode="json"), name
            )
            if difference is not None:
                key, current, made_with = difference
                raise InputError(
                    f"{key} is {current!r} in {params.file_name} but {folder} was made with {made_with!r}; "
                    f"rerun the {stage} stage",
                    file=str(folder / RECORD),
                    rule=RULE_UPSTREAM,
                )
            merged[name] = recorded
    return merged


def _first_difference(current: Any, recorded: Any, key: str) -> tuple[str, Any, Any] | None:
    if isinstance(current, dict) and isinstance(recorded, dict):
        for name in (*current, *(k for k in recorded if k not in current)):
            found = _first_difference(current.get(name), recorded.get(name), f"{key}.{name}")
            if found is not None:
                return found
        return None
    return None if current == recorded else (key, current, recorded)
