# Reference values for SurveyDesign's domain and raking options
# (tests/core/test_core_api_reference.py): `where` with "not_in", `by` over several
# columns, raking margins over crossed variables, and rake's epsilon as R reads it.
#
#   cd tests/reference && Rscript r/make_api_reference.R
#
# Needs R with survey 4.1-1 and jsonlite (loaded by r/common.R, with the data and populations).
# Reads data/apistrat.csv, apiclus1.csv, nhanes.csv, panel.csv (make_reference.R) and
# data/changes_panel.csv, changes_margins.csv (make_change_reference.R); writes api.json. Every
# value is printed with sprintf("%.17g") and stored next to the R call that produced it.

source("r/common.R")

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

# Population margins over one or more variables (data.frame(codes..., Freq)) as SurveyDesign takes
# them: [[[code, ...], count], ...].
crossed_margins_py <- function(pops) {
  lapply(pops, function(p) lapply(seq_len(nrow(p)), function(i) list(as.list(unname(p[i, -ncol(p)])), p[i, ncol(p)])))
}
cases <- list()
add_case <- function(id, data, design_r, design_py, queries, calibration = NULL, weights_r = NULL) {
  cases[[id]] <<- list(data = data, design_r = design_r, design_py = design_py, calibration = calibration,
                       weights_r = if (is.null(weights_r)) NULL else fmt(weights_r), queries = queries)
}

# --------------------------------------------------------------- where with not_in, by several columns
des <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = ds)
add_case("apistrat", "apistrat", "svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)",
  list(weights = "pw", strata = "stype", fpc = "fpc"),
  list(
    domain_query(des, ds, "mean", "api00", where = list(stype = list(not_in = list("H")), awards = list("Yes"))),
    domain_query(des, ds, "mean", "api00", where = list(stype = list(`in` = list("E", "M"), not_in = list("M"))),
                 by = list("awards")),
    domain_query(des, ds, "proportion", "sch.wide", success = list("Yes"), by = list("stype", "awards"))
  ))

des <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = dc)
rk <- rake(des, list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = ctrl)
add_case("apiclus1_raked", "apiclus1",
  "rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"),
  list(
    domain_query(rk, dc, "mean", "api00", by = list("stype", "awards")),
    domain_query(rk, dc, "mean", "api00", where = list(stype = list(not_in = list("E"))), by = list("comp.imp"))
  ),
  calibration = list(margins = list(list("stype", crossed_margins_py(list(pop_stype))[[1]]),
                                    list("sch.wide", crossed_margins_py(list(pop_sw))[[1]]))))

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
pop_age_sex <- data.frame(age_group = rep(1:4, each = 2), sex = rep(1:2, 4),
                          Freq = c(10300, 10700, 11900, 12100, 9400, 9600, 7900, 8100))
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
  calibration = list(margins = list(list(list("age_group", "sex"), crossed_margins_py(list(pop_age_sex))[[1]]),
                                    list("wijk", crossed_margins_py(list(pop_wijk))[[1]]))),
  weights_r = weights(rkx))

# The stacked panel raked to each wave's margins as margins crossed with the wave.
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
                                                                       crossed_margins_py(pops[i])[[1]]))),
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

write_reference("api.json", cases = cases,
                epsilon = list(data = "panel", filter = list(wave = list(2020)), weights = "w0",
                               margins = cases$panel2020_raked_age_x_sex$calibration$margins, cases = epsilon_cases))
