# Reference values for SurveyDesign's domain and raking options
# (tests/core/test_core_api_reference.py): `where` with "not_in", `by` over several
# columns, raking margins over crossed variables, and rake's epsilon as R reads it.
#
#   cd tests/reference && Rscript r/make_api_reference.R
#
# Needs R with survey 4.1-1 and jsonlite. Reads data/apistrat.csv, apiclus1.csv, nhanes.csv,
# panel.csv (make_reference.R) and data/changes_panel.csv, changes_margins.csv
# (make_change_reference.R); writes api.json. Every value is printed with sprintf("%.17g")
# and stored next to the R call that produced it.

suppressMessages({
  library(survey)
  library(jsonlite)
})
stopifnot(packageVersion("survey") == "4.1.1")
options(survey.adjust.domain.lonely = FALSE, survey.lonely.psu = "adjust", warn = 1)

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

# A proportion (success codes among valid answers) or a mean, per combination of `by`.
domain_query <- function(des, df, kind, variable, success = NULL, exclude = NULL, where = list(), by = NULL) {
  answered <- !is.na(df[[variable]]) & !(df[[variable]] %in% unlist(exclude))
  base <- answered & in_where(df, where)
  d <- des
  d$variables$y_ <- if (kind == "proportion") as.numeric(df[[variable]] %in% unlist(success)) else
    ifelse(answered, df[[variable]], 0)
  y_text <- if (kind == "proportion") sprintf("as.numeric(%s %%in%% %s)", variable, dq(unlist(success))) else variable
  base_text <- sprintf("!is.na(%s) & !(%s %%in%% %s) & %s", variable, variable, dq(unlist(exclude)), where_text(where))
  by <- unlist(by)
  if (is.null(by)) {
    combos <- data.frame(all = "_all")
    member <- function(i) base
  } else {
    present <- base & Reduce(`&`, lapply(by, function(b) !is.na(df[[b]])))
    combos <- unique(df[present, by, drop = FALSE])
    combos <- combos[do.call(order, unname(as.list(combos))), , drop = FALSE]
    member <- function(i) present & Reduce(`&`, lapply(by, function(b) df[[b]] == combos[i, b]))
  }
  domains <- lapply(seq_len(nrow(combos)), function(i) {
    dom <- member(i)
    sub <- subset(d, dom)
    est <- svymean(~y_, sub, deff = TRUE)
    df_dom <- degf(sub)
    ci <- confint(est, df = df_dom)
    list(level = if (is.null(by)) list() else as.list(combos[i, by, drop = FALSE]),
         n = sum(dom), estimate = fmt(coef(est)), se = fmt(SE(est)), deff = fmt(deff(est)), df = fmt(df_dom),
         ci_lower = fmt(ci[1, 1]), ci_upper = fmt(ci[1, 2]))
  })
  list(
    query = list(kind = kind, variable = variable, success = success, exclude = exclude, where = where, by = by),
    r_call = sprintf("svymean(~y_, subset(des, %s%s), deff = TRUE) with y_ = %s; confint(m, df = degf(subset(...)))",
                     base_text, if (is.null(by)) "" else paste0(" & ", paste0(by, " == level", collapse = " & ")),
                     y_text),
    domains = domains
  )
}

margins_py <- function(pops) {
  lapply(pops, function(p) lapply(seq_len(nrow(p)), function(i) list(as.list(unname(p[i, -ncol(p)])), p[i, ncol(p)])))
}
cases <- list()
add_case <- function(id, data, design_r, design_py, queries, calibration = NULL, weights_r = NULL) {
  cases[[id]] <<- list(data = data, design_r = design_r, design_py = design_py, calibration = calibration,
                       weights_r = if (is.null(weights_r)) NULL else fmt(weights_r), queries = queries)
}
ctrl <- list(maxit = 100, epsilon = 1e-10)

# --------------------------------------------------------------- where with not_in, by several columns
ds <- read_data("apistrat")
des <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = ds)
add_case("apistrat", "apistrat", "svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)",
  list(weights = "pw", strata = "stype", fpc = "fpc"),
  list(
    domain_query(des, ds, "mean", "api00", where = list(stype = list(not_in = list("H")), awards = list("Yes"))),
    domain_query(des, ds, "mean", "api00", where = list(stype = list(`in` = list("E", "M"), not_in = list("M"))),
                 by = list("awards")),
    domain_query(des, ds, "proportion", "sch.wide", success = list("Yes"), by = list("stype", "awards"))
  ))

dc <- read_data("apiclus1")
des <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = dc)
pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
pop_sw <- data.frame(sch.wide = c("No", "Yes"), Freq = c(1000, 5194))
rk <- rake(des, list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = ctrl)
add_case("apiclus1_raked", "apiclus1",
  "rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"),
  list(
    domain_query(rk, dc, "mean", "api00", by = list("stype", "awards")),
    domain_query(rk, dc, "mean", "api00", where = list(stype = list(not_in = list("E"))), by = list("comp.imp"))
  ),
  calibration = list(margins = list(list("stype", margins_py(list(pop_stype))[[1]]),
                                    list("sch.wide", margins_py(list(pop_sw))[[1]]))))

dn <- read_data("nhanes")
des <- svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = dn)
add_case("nhanes", "nhanes",
  "svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes)",
  list(weights = "WTMEC2YR", strata = "SDMVSTRA", cluster = "SDMVPSU"),
  list(
    domain_query(des, dn, "proportion", "HI_CHOL", success = list(1), by = list("race", "RIAGENDR")),
    # not_in on a variable with missing values: those rows are outside too.
    domain_query(des, dn, "proportion", "RIAGENDR", success = list(2), where = list(HI_CHOL = list(not_in = list(1))),
                 by = list("race"))
  ))

# --------------------------------------------------------------- raking over crossed variables
panel <- read_data("panel")
p20 <- panel[panel$wave == 2020, ]
pop_age_sex <- data.frame(age_group = rep(1:4, each = 2), sex = rep(1:2, 4),
                          Freq = c(10300, 10700, 11900, 12100, 9400, 9600, 7900, 8100))
pop_wijk <- data.frame(wijk = 1:8, Freq = c(18000, 13000, 12000, 9000, 8000, 8000, 6000, 6000))
rkx <- rake(svydesign(ids = ~1, weights = ~w0, data = p20), list(~age_group + sex, ~wijk), list(pop_age_sex, pop_wijk),
            control = ctrl)
add_case("panel2020_raked_age_x_sex", "panel",
  "rake(svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020)), list(~age_group + sex, ~wijk), list(pop_age_sex, pop_wijk), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "w0", filter = list(wave = list(2020))),
  list(
    domain_query(rkx, p20, "proportion", "heard", success = list(1), exclude = list(99), by = list("wijk")),
    domain_query(rkx, p20, "proportion", "contact", success = list(1), where = list(wijk = list(not_in = list(1, 2))),
                 by = list("age_group", "sex"))
  ),
  calibration = list(margins = list(list(list("age_group", "sex"), margins_py(list(pop_age_sex))[[1]]),
                                    list("wijk", margins_py(list(pop_wijk))[[1]]))),
  weights_r = weights(rkx))

# The stacked panel raked to each wave's margins as margins crossed with the wave.
cp <- read_data("changes_panel")
cm <- read_data("changes_margins")
pops <- lapply(c("age_group", "sex", "wijk"), function(v) {
  m <- cm[cm$variable == v, ]
  t <- data.frame(wave = m$wave, code = m$code, Freq = m$count)
  names(t)[2] <- v
  t
})
rkc <- rake(svydesign(ids = ~resp_id, weights = ~base_weight, data = cp),
            list(~wave + age_group, ~wave + sex, ~wave + wijk), pops, control = ctrl)
add_case("changes_panel_raked_wave_x", "changes_panel",
  "rake(svydesign(ids = ~resp_id, weights = ~base_weight, data = changes_panel), list(~wave + age_group, ~wave + sex, ~wave + wijk), pops (changes_margins.csv), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "base_weight", cluster = "resp_id"),
  list(domain_query(rkc, cp, "proportion", "heard", success = list(1), exclude = list(98), by = list("wave", "sex"))),
  calibration = list(margins = lapply(seq_along(pops), function(i) list(list("wave", names(pops[[i]])[2]),
                                                                       margins_py(pops[i])[[1]]))),
  weights_r = weights(rkc))

# --------------------------------------------------------------- rake's epsilon as R reads it
eps_case <- function(epsilon, maxit) {
  r <- rake(svydesign(ids = ~1, weights = ~w0, data = p20), list(~age_group + sex, ~wijk), list(pop_age_sex, pop_wijk),
            control = list(maxit = maxit, epsilon = epsilon))
  list(epsilon = epsilon, maxit = maxit,
       r_call = sprintf("weights(rake(svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020)), list(~age_group + sex, ~wijk), list(pop_age_sex, pop_wijk), control = list(maxit = %d, epsilon = %s)))",
                        maxit, format(epsilon)),
       weights_r = fmt(weights(r)))
}
epsilon_cases <- list(eps_case(1, 10), eps_case(50, 100), eps_case(1e-4, 100), eps_case(1e-10, 100))

meta <- list(r_version = R.version.string, survey_version = as.character(packageVersion("survey")),
             options = "survey.adjust.domain.lonely = FALSE; survey.lonely.psu = \"adjust\"")
writeLines(toJSON(list(meta = meta, cases = cases, epsilon = list(data = "panel", filter = list(wave = list(2020)),
                                                                   weights = "w0",
                                                                   margins = cases$panel2020_raked_age_x_sex$calibration$margins,
                                                                   cases = epsilon_cases)),
                  auto_unbox = TRUE, null = "null", pretty = TRUE, digits = NA), "api.json")
cat("reference values written\n")
