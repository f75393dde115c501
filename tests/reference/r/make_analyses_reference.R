# Regenerate the R survey reference values for SurveyDesign.mean, .total, .chisq and .logit
# (tests/core/test_core_analyses_reference.py).
#
#   cd tests/reference && Rscript r/make_analyses_reference.R
#
# Needs R with survey 4.1-1 and jsonlite (loaded by r/common.R, with the data and populations).
# Reads the data written by make_reference.R (data/apistrat.csv, apiclus1.csv, nhanes.csv: R's
# data(api) and data(nhanes); data/panel.csv: synthetic) and writes analyses.json. Every value is
# printed with sprintf("%.17g") and stored next to the R call that produced it.

source("r/common.R")

# ---------------------------------------------------------------- means and totals
# Per domain: svymean/svytotal(na.rm = TRUE, deff = TRUE) on subset(des, where & by == level),
# t interval on the degf of the domain without the missing values of the variable.
one_value <- function(des, df, statistic, variable, dom, dom_text) {
  answered <- dom & !is.na(df[[variable]])
  if (sum(answered) == 0) {
    return(list(n = 0, r_error = "R: no row with a value in the domain, svymean/svytotal cannot be computed"))
  }
  f <- as.formula(paste0("~", variable))
  fun <- if (statistic == "mean") svymean else svytotal
  est <- fun(f, des[dom, ], na.rm = TRUE, deff = TRUE)
  sub <- des[answered, ]
  df_dom <- degf(sub)
  ci <- confint(est, df = df_dom)
  call <- sprintf("%s(~%s, subset(des, %s), na.rm = TRUE, deff = TRUE)", paste0("svy", statistic), variable, dom_text)
  list(
    n = sum(answered),
    r_call = call,
    estimate = fmt(coef(est)[1]),
    se = fmt(SE(est)[1]),
    deff = fmt(deff(est)[1]),
    r_df_call = sprintf("degf(subset(des, %s & !is.na(%s)))", dom_text, variable),
    df = fmt(df_dom),
    r_ci_call = sprintf("confint(%s, df = df)", call),
    ci_lower = fmt(ci[1, 1]),
    ci_upper = fmt(ci[1, 2]),
    sum_weights = fmt(sum(weights(sub, "sampling")))
  )
}

value_query <- function(des, df, statistic, variable, where = list(), by = NULL) {
  query <- list(statistic = statistic, variable = variable, where = where, by = by)
  domains <- by_domains(df, where, by, function(mask, text) one_value(des, df, statistic, variable, mask, text))
  list(query = query, domains = domains)
}

# ---------------------------------------------------------------- Rao-Scott tests
chisq_query <- function(des, df, row, col, where = list()) {
  sub <- des[in_where(df, where), ]
  f <- as.formula(sprintf("~%s + %s", row, col))
  call <- function(statistic) {
    domain <- if (length(where)) sprintf("subset(des, %s)", where_text(where)) else "des"
    sprintf("svychisq(~%s + %s, %s, statistic = \"%s\")", row, col, domain, statistic)
  }
  second <- svychisq(f, sub, statistic = "F")
  first <- svychisq(f, sub, statistic = "Chisq")
  df_first <- first$parameter[["df"]]
  list(
    query = list(row = row, col = col, where = where),
    F = list(r_call = call("F"), statistic = fmt(second$statistic),
             ndf = fmt(second$parameter[["ndf"]]), ddf = fmt(second$parameter[["ddf"]]),
             p_value = fmt(second$p.value)),
    Chisq = list(r_call = call("Chisq"),
                 r_pearson_call = "X-squared printed by the Chisq call (unadjusted, table scaled to nrow(design))",
                 pearson = fmt(first$statistic),
                 r_statistic_call = "F statistic * df = X^2 / mean(diag(Delta)), the statistic of the Chisq p-value",
                 statistic = fmt(second$statistic * df_first),
                 df = fmt(df_first), p_value = fmt(first$p.value))
  )
}

# ---------------------------------------------------------------- logistic regression
# svyglm refitted from its own converged coefficients: glm reports coefficients one IRLS
# step past the covariance, so the covariance is only exact at a fixed point.
logit_query <- function(des, df, formula_r, formula_py, success = NULL, where = list()) {
  sub <- des[in_where(df, where), ]
  domain <- if (length(where)) sprintf("subset(des, %s)", where_text(where)) else "des"
  control <- glm.control(epsilon = 1e-12, maxit = 100)
  f <- as.formula(formula_r)
  first <- do.call(svyglm, list(f, sub, family = quasibinomial(), control = control))
  fit <- do.call(svyglm, list(f, sub, family = quasibinomial(), start = unname(coef(first)), control = control))
  s <- summary(fit)$coefficients
  ci <- confint(fit)
  terms <- lapply(rownames(s), function(term) list(
    estimate = fmt(s[term, "Estimate"]), se = fmt(s[term, "Std. Error"]), p_value = fmt(s[term, 4]),
    ci_lower = fmt(ci[term, 1]), ci_upper = fmt(ci[term, 2])))
  names(terms) <- rownames(s)
  list(
    query = list(formula = formula_py, success = success, where = where),
    r_call = sprintf("svyglm(%s, %s, family = quasibinomial(), start = <coefficients of the same fit>, control = glm.control(epsilon = 1e-12, maxit = 100))",
                     formula_r, domain),
    r_values_call = "summary(fit)$coefficients; confint(fit)",
    r_df_call = "fit$df.residual", df = fmt(fit$df.residual),
    terms = terms
  )
}

cases <- list()
add_case <- function(id, data, design_r, design_py, values, tests, calibration = NULL, logits = list()) {
  cases[[id]] <<- list(data = data, design_r = design_r, design_py = design_py, calibration = calibration,
                       values = values, chisq = tests, logit = logits)
}

# apistrat: stratified, fpc; acs.k3 is missing for every high school (an empty domain).
des <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = ds)
add_case("apistrat", "apistrat",
  "svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)",
  list(weights = "pw", strata = "stype", fpc = "fpc"),
  list(
    value_query(des, ds, "mean", "api00"),
    value_query(des, ds, "mean", "api00", by = "stype"),
    value_query(des, ds, "total", "enroll"),
    value_query(des, ds, "total", "enroll", by = "stype"),
    value_query(des, ds, "mean", "acs.k3", by = "stype"),
    value_query(des, ds, "mean", "avg.ed", where = list(sch.wide = list("Yes")), by = "stype"),
    value_query(des, ds, "total", "acs.k3", where = list(awards = list("Yes")))
  ),
  list(
    chisq_query(des, ds, "sch.wide", "stype"),
    chisq_query(des, ds, "awards", "stype", where = list(comp.imp = list("Yes"))),
    chisq_query(des, ds, "yr.rnd", "awards", where = list(stype = list("E", "M")))
  ),
  logits = list(
    logit_query(des, ds, "as.numeric(sch.wide == \"Yes\") ~ stype + meals", "sch.wide ~ stype + meals",
                success = list("Yes")),
    logit_query(des, ds, "as.numeric(awards == \"Yes\") ~ ell + avg.ed", "awards ~ ell + avg.ed",
                success = list("Yes"), where = list(stype = list("E", "M")))
  ))

# apiclus1: one-stage cluster sample with fpc; raked and post-stratified.
des <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = dc)
clus_values <- function(des) list(
  value_query(des, dc, "mean", "api00"),
  value_query(des, dc, "mean", "api00", by = "stype"),
  value_query(des, dc, "total", "enroll", by = "stype"),
  value_query(des, dc, "mean", "acs.46", by = "stype"),
  value_query(des, dc, "total", "avg.ed", where = list(comp.imp = list("Yes")), by = "sch.wide")
)
clus_logits <- function(des) list(
  logit_query(des, dc, "as.numeric(awards == \"Yes\") ~ stype + api99", "awards ~ stype + api99",
              success = list("Yes"))
)
clus_tests <- function(des) list(
  chisq_query(des, dc, "sch.wide", "stype"),
  chisq_query(des, dc, "awards", "stype"),
  chisq_query(des, dc, "comp.imp", "stype", where = list(sch.wide = list("Yes")))
)
add_case("apiclus1", "apiclus1", "svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1)",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), clus_values(des), clus_tests(des), logits = clus_logits(des))
rk <- rake(des, list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = ctrl)
add_case("apiclus1_raked", "apiclus1",
  "rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), clus_values(rk), clus_tests(rk), logits = clus_logits(rk),
  calibration = list(kind = "rake", margins = margins_py(list(stype = pop_stype, sch.wide = pop_sw))))
ps <- postStratify(des, ~stype, pop_stype)
add_case("apiclus1_poststratified", "apiclus1",
  "postStratify(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), ~stype, pop_stype)",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), clus_values(ps), clus_tests(ps), logits = clus_logits(ps),
  calibration = list(kind = "poststratify", variables = list("stype"), totals = margins_py(list(pop_stype))[[1]]))

# nhanes: strata with two PSUs each; HI_CHOL has missing values. Uncalibrated and raked.
des <- svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = dn)
nh_values <- function(des) list(
  value_query(des, dn, "mean", "HI_CHOL"),
  value_query(des, dn, "mean", "HI_CHOL", by = "race"),
  value_query(des, dn, "total", "HI_CHOL", by = "agecat"),
  value_query(des, dn, "mean", "HI_CHOL", where = list(RIAGENDR = list(2)), by = "race")
)
nh_logits <- function(des) list(
  logit_query(des, dn, "HI_CHOL ~ agecat + factor(race) + RIAGENDR", "HI_CHOL ~ agecat + factor(race) + RIAGENDR"),
  logit_query(des, dn, "HI_CHOL ~ agecat + factor(race)", "HI_CHOL ~ agecat + factor(race)",
              where = list(RIAGENDR = list(2)))
)
nh_tests <- function(des) list(
  chisq_query(des, dn, "HI_CHOL", "race"),
  chisq_query(des, dn, "agecat", "race"),
  chisq_query(des, dn, "HI_CHOL", "agecat", where = list(RIAGENDR = list(2)))
)
add_case("nhanes", "nhanes",
  "svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes)",
  list(weights = "WTMEC2YR", strata = "SDMVSTRA", cluster = "SDMVPSU"), nh_values(des), nh_tests(des), logits = nh_logits(des))
pop_agecat <- data.frame(agecat = c("(0,19]", "(19,39]", "(39,59]", "(59,Inf]"),
                         Freq = c(80e6, 82e6, 74e6, 50e6))
pop_gender <- data.frame(RIAGENDR = 1:2, Freq = c(140e6, 146e6))
pop_race <- data.frame(race = 1:4, Freq = c(40e6, 190e6, 36e6, 20e6))
rkn <- rake(des, list(~agecat, ~RIAGENDR, ~race), list(pop_agecat, pop_gender, pop_race), control = ctrl)
add_case("nhanes_raked", "nhanes",
  "rake(svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes), list(~agecat, ~RIAGENDR, ~race), list(pop_agecat, pop_gender, pop_race), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "WTMEC2YR", strata = "SDMVSTRA", cluster = "SDMVPSU"), nh_values(rkn), nh_tests(rkn), logits = nh_logits(rkn),
  calibration = list(kind = "rake", margins = margins_py(list(agecat = pop_agecat, RIAGENDR = pop_gender, race = pop_race))))

# Synthetic panel wave 2020, raked from unequal base weights, every row its own PSU;
# heard/contact have missing values and a "weet niet" code (99).
add_case("panel2020_raked", "panel",
  rkp_call,
  list(weights = "w0", filter = list(wave = list(2020))),
  list(
    value_query(rkp, p20, "mean", "contact", by = "wijk"),
    value_query(rkp, p20, "total", "helped", where = list(contact = list(1)), by = "age_group")
  ),
  list(
    chisq_query(rkp, p20, "heard", "age_group"),
    chisq_query(rkp, p20, "contact", "sex", where = list(heard = list(1)))
  ),
  calibration = rkp_calibration)

write_reference("analyses.json", cases = cases)
