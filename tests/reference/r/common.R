# What the SurveyDesign reference scripts share (make_quantile_reference.R,
# make_analyses_reference.R, make_comparisons_reference.R, make_api_reference.R):
# survey 4.1-1 and its options, value formatting, the data and populations, the
# rake control and the JSON writer. Sourced from tests/reference:
#
#   cd tests/reference && Rscript r/make_<name>_reference.R

suppressMessages({
  library(survey)
  library(jsonlite)
})
stopifnot(packageVersion("survey") == "4.1.1")
options(survey.adjust.domain.lonely = FALSE, survey.lonely.psu = "adjust", warn = 1)

# Every value as 17 significant digits (jsonlite's digits = NA gives 15).
fmt <- function(x) sprintf("%.17g", as.numeric(x))
dq <- function(x) paste(deparse(x, width.cutoff = 500L), collapse = "")
read_data <- function(name) read.csv(file.path("data", paste0(name, ".csv")), stringsAsFactors = FALSE)

# SurveyDesign's `where`: per variable a list of codes, or list(`in` = ..., not_in = ...);
# a missing value never meets a condition.
in_where <- function(df, where) {
  dom <- rep(TRUE, nrow(df))
  for (v in names(where)) {
    cond <- where[[v]]
    if (!is.null(names(cond))) {
      if (!is.null(cond[["in"]])) dom <- dom & df[[v]] %in% unlist(cond[["in"]])
      if (!is.null(cond[["not_in"]])) dom <- dom & !is.na(df[[v]]) & !(df[[v]] %in% unlist(cond[["not_in"]]))
    } else {
      dom <- dom & df[[v]] %in% unlist(cond)
    }
  }
  dom
}
where_text <- function(where) {
  parts <- vapply(names(where), function(v) {
    cond <- where[[v]]
    if (is.null(names(cond))) return(sprintf("%s %%in%% %s", v, dq(unlist(cond))))
    p <- c(if (!is.null(cond[["in"]])) sprintf("%s %%in%% %s", v, dq(unlist(cond[["in"]]))),
           if (!is.null(cond[["not_in"]])) sprintf("!is.na(%s) & !(%s %%in%% %s)", v, v, dq(unlist(cond[["not_in"]]))))
    paste(p, collapse = " & ")
  }, "")
  if (length(parts)) paste(parts, collapse = " & ") else "TRUE"
}

# `one(mask, text)` for the rows meeting `where`, or per level of `by` among them; named "_all" or
# by level. `text` is the R condition the mask stands for (kept beside each value).
by_domains <- function(df, where, by, one) {
  base <- in_where(df, where)
  if (is.null(by)) {
    res <- list(one(base, where_text(where)))
    names(res) <- "_all"
    return(res)
  }
  levels <- sort(unique(df[[by]][!is.na(df[[by]])]))
  res <- lapply(levels, function(l) {
    dom_text <- sprintf("%s == %s", by, dq(l))
    if (length(where)) dom_text <- paste(where_text(where), "&", dom_text)
    one(base & !is.na(df[[by]]) & df[[by]] == l, dom_text)
  })
  names(res) <- as.character(levels)
  res
}

# One-variable population margins (data.frame(code, Freq)) as SurveyDesign takes them: [[code, count], ...].
margins_py <- function(pops) {
  lapply(pops, function(p) lapply(seq_len(nrow(p)), function(i) list(p[i, 1], p[i, 2])))
}
ctrl <- list(maxit = 100, epsilon = 1e-10)

# The data (written by make_reference.R: apistrat, apiclus1, nhanes are R's data(api) and
# data(nhanes), panel is synthetic; by make_change_reference.R: changes_panel, changes_margins).
ds <- read_data("apistrat")
dc <- read_data("apiclus1")
dn <- read_data("nhanes")
panel <- read_data("panel")
p20 <- panel[panel$wave == 2020, ]
cp <- read_data("changes_panel")
cm <- read_data("changes_margins")

# Populations the scripts rake to: apiclus1 by school type and sch.wide, the panel's wave 2020.
pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
pop_sw <- data.frame(sch.wide = c("No", "Yes"), Freq = c(1000, 5194))
pop_age <- data.frame(age_group = 1:4, Freq = c(21000, 24000, 19000, 16000))
pop_sex <- data.frame(sex = 1:2, Freq = c(39500, 40500))
pop_wijk <- data.frame(wijk = 1:8, Freq = c(18000, 13000, 12000, 9000, 8000, 8000, 6000, 6000))

# The panel's wave 2020 raked to age, sex and wijk from unequal base weights, every row its own PSU:
# the design, its R call as written beside the values, and its margins as SurveyDesign takes them.
rkp <- rake(svydesign(ids = ~1, weights = ~w0, data = p20), list(~age_group, ~sex, ~wijk),
            list(pop_age, pop_sex, pop_wijk), control = ctrl)
rkp_call <- "rake(svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020)), list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = list(maxit = 100, epsilon = 1e-10))"
rkp_calibration <- list(kind = "rake", margins = margins_py(list(age_group = pop_age, sex = pop_sex, wijk = pop_wijk)))

# Write `file`: the R and survey versions and options, then the named parts (e.g. cases = cases).
write_reference <- function(file, ...) {
  meta <- list(r_version = R.version.string, survey_version = as.character(packageVersion("survey")),
               options = "survey.adjust.domain.lonely = FALSE; survey.lonely.psu = \"adjust\"")
  writeLines(toJSON(list(meta = meta, ...), auto_unbox = TRUE, null = "null", pretty = TRUE, digits = NA), file)
  cat("reference values written\n")
}
