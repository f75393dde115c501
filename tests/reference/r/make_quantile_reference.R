# Regenerate the R survey reference values for SurveyDesign.quantile
# (tests/core/test_core_quantile_reference.py).
#
#   cd tests/reference && Rscript r/make_quantile_reference.R
#
# Needs R with survey 4.1-1 and jsonlite (loaded by r/common.R, with the data and populations).
# Reads the data written by make_reference.R (data/apistrat.csv, apiclus1.csv: R's data(api);
# data/panel.csv: synthetic) and writes quantiles.json. Every value is printed with
# sprintf("%.17g") next to the R call that produced it.

source("r/common.R")

# Per domain: svyquantile on subset(des, domain & !is.na(variable)) with R's defaults
# interval.type = "mean" (Woodruff) and qrule = "math"; df = degf of that subset.
one_domain <- function(des, df, variable, probs, dom, dom_text) {
  answered <- dom & !is.na(df[[variable]])
  if (sum(answered) == 0) {
    return(list(n = 0, r_error = "R: no row with a value in the domain, svyquantile cannot be computed"))
  }
  sub <- des[answered, ]
  q <- svyquantile(as.formula(paste0("~", variable)), sub, probs, interval.type = "mean", qrule = "math",
                   ci = TRUE)[[1]]
  list(
    n = sum(answered),
    r_call = sprintf("svyquantile(~%s, subset(des, %s & !is.na(%s)), %s, interval.type = \"mean\", qrule = \"math\", ci = TRUE)",
                     variable, dom_text, variable, dq(probs)),
    r_df_call = sprintf("degf(subset(des, %s & !is.na(%s)))", dom_text, variable),
    df = fmt(degf(sub)),
    sum_weights = fmt(sum(weights(sub, "sampling"))),
    quantiles = lapply(seq_along(probs), function(i) list(
      prob = probs[i], estimate = fmt(q[i, 1]), ci_lower = fmt(q[i, 2]), ci_upper = fmt(q[i, 3]), se = fmt(q[i, 4])))
  )
}

quantile_query <- function(des, df, variable, probs, where = list(), by = NULL) {
  query <- list(variable = variable, probs = probs, where = where, by = by)
  domains <- by_domains(df, where, by, function(mask, text) one_domain(des, df, variable, probs, mask, text))
  list(query = query, domains = domains)
}

cases <- list()
add_case <- function(id, data, design_r, design_py, values, calibration = NULL) {
  cases[[id]] <<- list(data = data, design_r = design_r, design_py = design_py, calibration = calibration,
                       quantiles = values)
}

# apistrat: stratified, fpc; acs.k3 is missing for every high school (an empty domain).
des <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = ds)
add_case("apistrat", "apistrat",
  "svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)",
  list(weights = "pw", strata = "stype", fpc = "fpc"),
  list(
    quantile_query(des, ds, "api00", c(0.25, 0.5, 0.75)),
    quantile_query(des, ds, "api00", c(0.1, 0.5, 0.9), by = "stype"),
    quantile_query(des, ds, "acs.k3", 0.5, by = "stype"),
    quantile_query(des, ds, "enroll", 0.5, where = list(sch.wide = list("Yes")), by = "stype")
  ))

# apiclus1: one-stage cluster sample with fpc; also raked.
des <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = dc)
clus_values <- function(des) list(
  quantile_query(des, dc, "api00", c(0.25, 0.5, 0.75)),
  quantile_query(des, dc, "api00", 0.5, by = "stype"),
  quantile_query(des, dc, "enroll", c(0.5, 0.9), where = list(comp.imp = list("Yes")), by = "sch.wide")
)
add_case("apiclus1", "apiclus1", "svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1)",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), clus_values(des))
rk <- rake(des, list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = ctrl)
add_case("apiclus1_raked", "apiclus1",
  "rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), clus_values(rk),
  calibration = list(kind = "rake", margins = margins_py(list(stype = pop_stype, sch.wide = pop_sw))))

# Synthetic panel wave 2020, raked from unequal base weights, every row its own PSU: a discrete
# variable (many ties) and a continuous one.
add_case("panel2020_raked", "panel",
  rkp_call,
  list(weights = "w0", filter = list(wave = list(2020))),
  list(
    quantile_query(rkp, p20, "age_group", 0.5, by = "wijk"),
    quantile_query(rkp, p20, "w0", c(0.1, 0.5, 0.9), where = list(heard = list(1)))
  ),
  calibration = rkp_calibration)

write_reference("quantiles.json", cases = cases)
