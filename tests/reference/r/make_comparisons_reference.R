# Reference values for SurveyDesign.domain_vs_rest and .trend
# (tests/core/test_core_comparisons_reference.py).
#
#   cd tests/reference && Rscript r/make_comparisons_reference.R
#
# Needs R with survey 4.1-1 and jsonlite (loaded by r/common.R, with the data and populations).
# Reads data/apistrat.csv, apiclus1.csv, nhanes.csv, panel.csv (make_reference.R) and
# data/changes_panel.csv, changes_margins.csv (make_change_reference.R); writes comparisons.json.
# Every value is printed with sprintf("%.17g") and stored next to the R call that produced it.
#
# Domain means are ratios on the full design (svyratio, covmat = TRUE; equal to svymean on
# subset(des, domain)), compared with svycontrast:
# - A domain against the rest: per level l of `by`, contrast c(1, -1) of the means of
#   base & by == l and base & by != l; df = degf(subset(des, base)); p = 2 * pt(-abs(t), df);
#   p.adjust(p, "holm") and p.adjust(p, "BH") over the levels.
# - A linear trend over waves: contrast c = (s - mean(s)) / sum((s - mean(s))^2) of the wave
#   means (the least-squares slope on the scores s); df = degf(subset(des, base & wave in
#   waves)); per `by` level on base & by == l.

source("r/common.R")

# Base rows and outcome, as SurveyDesign: answered, not excluded, inside `where`.
outcome <- function(df, variable, success, exclude, where) {
  base <- !is.na(df[[variable]]) & !(df[[variable]] %in% unlist(exclude)) & in_where(df, where)
  y <- if (is.null(success)) ifelse(base, df[[variable]], 0) else as.numeric(df[[variable]] %in% unlist(success))
  list(base = base, y = y)
}

contrast_values <- function(ct, df_sub) {
  est <- as.numeric(coef(ct))
  se <- as.numeric(SE(ct))
  t <- est / se
  list(estimate = est, se = se, df = df_sub, t = t, p_value = 2 * pt(-abs(t), df_sub),
       ci_lower = est - qt(0.975, df_sub) * se, ci_upper = est + qt(0.975, df_sub) * se)
}

# Domain means as ratios on the full design and a linear contrast of them (svyby(covmat =
# TRUE) fails on calibrated designs in survey 4.1-1, svyratio does not).
ratio_contrast <- function(des, y, groups, coefs) {
  d <- des
  k <- length(groups)
  for (i in seq_len(k)) {
    d$variables[[paste0("num", i)]] <- ifelse(groups[[i]], y, 0)
    d$variables[[paste0("den", i)]] <- as.numeric(groups[[i]])
  }
  r <- svyratio(as.formula(paste0("~", paste0("num", seq_len(k), collapse = " + "))),
                as.formula(paste0("~", paste0("den", seq_len(k), collapse = " + "))), d, covmat = TRUE)
  own <- paste0("num", seq_len(k), "/den", seq_len(k))
  list(means = coef(r)[own], ct = svycontrast(r, setNames(coefs, own)))
}
RATIO_CALL <- paste0("r <- svyratio(~num1 + ... + numK, ~den1 + ... + denK, des, covmat = TRUE) with ",
                     "den_i = 1 in group i (else 0), num_i = y * den_i; ct <- svycontrast(r, c('num_i/den_i' = c_i))")

dvr_query <- function(des, df, variable, success = NULL, exclude = NULL, where = list(), by) {
  o <- outcome(df, variable, success, exclude, where)
  base <- o$base & !is.na(df[[by]])
  levels <- sort(unique(df[[by]][!is.na(df[[by]])]))
  df_sub <- degf(subset(des, base))
  rows <- lapply(levels, function(l) {
    dom <- base & df[[by]] == l
    res <- ratio_contrast(des, o$y, list(dom, base & !dom), c(1, -1))
    list(level = l, n_domain = sum(dom), n_rest = sum(base & !dom),
         estimate_domain = res$means[[1]], estimate_rest = res$means[[2]], v = contrast_values(res$ct, df_sub))
  })
  p <- vapply(rows, function(r) r$v$p_value, 0)
  holm <- p.adjust(p, "holm")
  bh <- p.adjust(p, "BH")
  levels_out <- lapply(seq_along(rows), function(i) {
    r <- rows[[i]]
    c(list(level = r$level, n_domain = r$n_domain, n_rest = r$n_rest,
           estimate_domain = fmt(r$estimate_domain), estimate_rest = fmt(r$estimate_rest)),
      lapply(r$v, fmt), list(p_holm = fmt(holm[i]), p_bh = fmt(bh[i])))
  })
  list(
    query = list(variable = variable, success = success, exclude = exclude, where = where, by = by),
    r_call = paste0(sprintf("per level l, y = %s, groups (base & %s == l, base & %s != l), c = c(1, -1): ",
                            if (is.null(success)) variable else sprintf("%s %%in%% %s", variable, dq(unlist(success))),
                            by, by), RATIO_CALL),
    r_base = sprintf("base: !is.na(%s) & !(%s %%in%% %s) & where %s & !is.na(%s)", variable, variable,
                     dq(unlist(exclude)), dq(where), by),
    r_values_call = paste0("coef(r); coef(ct); SE(ct); df <- degf(subset(des, base)); t <- coef(ct) / SE(ct); ",
                           "p <- 2 * pt(-abs(t), df); coef(ct) -/+ qt(0.975, df) * SE(ct); ",
                           "p.adjust(p, \"holm\"); p.adjust(p, \"BH\")"),
    levels = levels_out
  )
}

trend_query <- function(des, df, variable, success = NULL, exclude = NULL, where = list(), over = "wave",
                        waves, scores = NULL, by = NULL) {
  o <- outcome(df, variable, success, exclude, where)
  base <- o$base & df[[over]] %in% waves
  s <- if (is.null(scores)) as.numeric(waves) else scores
  cw <- (s - mean(s)) / sum((s - mean(s))^2)
  one <- function(dom) {
    res <- ratio_contrast(des, o$y, lapply(waves, function(w) dom & df[[over]] == w), cw)
    v <- contrast_values(res$ct, degf(subset(des, dom)))
    c(lapply(v, fmt), list(estimates = fmt(res$means), n = vapply(waves, function(w) sum(dom & df[[over]] == w), 0)))
  }
  groups <- if (is.null(by)) list("_all" = one(base)) else {
    levels <- sort(unique(df[[by]][!is.na(df[[by]])]))
    res <- lapply(levels, function(l) one(base & !is.na(df[[by]]) & df[[by]] == l))
    names(res) <- as.character(levels)
    res
  }
  list(
    query = list(variable = variable, success = success, exclude = exclude, where = where, over = over,
                 waves = waves, scores = scores, by = by),
    r_call = paste0(sprintf("y = %s, groups base%s & %s == w for w in %s, c = %s: ",
                            if (is.null(success)) variable else sprintf("%s %%in%% %s", variable, dq(unlist(success))),
                            if (is.null(by)) "" else sprintf(" & %s == level", by), over, dq(waves), dq(cw)),
                    RATIO_CALL),
    r_values_call = "coef(ct); SE(ct); df <- degf(subset(des, base ...)); p <- 2 * pt(-abs(coef(ct) / SE(ct)), df); coef(r)",
    groups = groups
  )
}

cases <- list()
add_case <- function(id, data, design_r, design_py, dvr = list(), trend = list(), calibration = NULL,
                     crossed_with = NULL) {
  cases[[id]] <<- list(data = data, design_r = design_r, design_py = design_py, calibration = calibration,
                       crossed_with = crossed_with, domain_vs_rest = dvr, trend = trend)
}

# apistrat: stratified with fpc.
des <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = ds)
add_case("apistrat", "apistrat",
  "svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)",
  list(weights = "pw", strata = "stype", fpc = "fpc"),
  dvr = list(
    dvr_query(des, ds, "api00", by = "stype"),
    dvr_query(des, ds, "sch.wide", success = list("Yes"), by = "stype"),
    dvr_query(des, ds, "awards", success = list("Yes"), where = list(yr.rnd = list("No")), by = "stype")
  ))

# apiclus1: one-stage clusters with fpc, raked.
des <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = dc)
rk <- rake(des, list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = ctrl)
add_case("apiclus1_raked", "apiclus1",
  "rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"),
  calibration = list(kind = "rake", margins = margins_py(list(stype = pop_stype, sch.wide = pop_sw))),
  dvr = list(
    dvr_query(rk, dc, "api00", by = "stype"),
    dvr_query(rk, dc, "awards", success = list("Yes"), by = "stype")
  ))

# nhanes: strata with two PSUs; HI_CHOL has missing values. Race codes 1-4 stand in for
# ordered waves in the trend (a stratified, clustered design).
des <- svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = dn)
add_case("nhanes", "nhanes",
  "svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes)",
  list(weights = "WTMEC2YR", strata = "SDMVSTRA", cluster = "SDMVPSU"),
  dvr = list(
    dvr_query(des, dn, "HI_CHOL", success = list(1), by = "race"),
    dvr_query(des, dn, "HI_CHOL", where = list(RIAGENDR = list(2)), by = "agecat")
  ),
  trend = list(
    trend_query(des, dn, "HI_CHOL", success = list(1), over = "race", waves = 1:4),
    trend_query(des, dn, "HI_CHOL", success = list(1), over = "race", waves = c(1, 2, 4), scores = c(0, 1, 3),
                by = "RIAGENDR")
  ))

# Synthetic panel wave 2020, raked; every row its own PSU; eight wijken.
add_case("panel2020_raked", "panel",
  rkp_call,
  list(weights = "w0", filter = list(wave = list(2020))),
  calibration = rkp_calibration,
  dvr = list(
    dvr_query(rkp, p20, "heard", success = list(1), exclude = list(99), by = "wijk"),
    dvr_query(rkp, p20, "contact", success = list(1), where = list(heard = list(1)), by = "wijk"),
    dvr_query(rkp, p20, "age_group", by = "wijk")
  ))

# Stacked panel of three waves, respondent as cluster (base_weight doubles as a numeric item
# that the calibration does not fix): uncalibrated and raked to the
# margins of each wave (each margin crossed with the wave: cal_v = wave * 1000 + v).
for (v in c("age_group", "sex", "wijk")) cp[[paste0("cal_", v)]] <- cp$wave * 1000 + cp[[v]]
des <- svydesign(ids = ~resp_id, weights = ~base_weight, data = cp)
stacked_trends <- function(des) list(
  trend_query(des, cp, "heard", success = list(1), exclude = list(98), waves = c(2019, 2020, 2021)),
  trend_query(des, cp, "contact", success = list(1), exclude = list(98, 99), where = list(heard = list(1)),
              waves = c(2019, 2020, 2021), by = "sex"),
  trend_query(des, cp, "base_weight", waves = c(2019, 2020, 2021), scores = c(0, 2, 3))
)
stacked_dvr <- function(des) list(
  dvr_query(des, cp, "heard", success = list(1), exclude = list(98), where = list(wave = list(2021)), by = "wijk")
)
add_case("changes_panel", "changes_panel", "svydesign(ids = ~resp_id, weights = ~base_weight, data = changes_panel)",
  list(weights = "base_weight", cluster = "resp_id"), dvr = stacked_dvr(des), trend = stacked_trends(des))
pops <- lapply(c("age_group", "sex", "wijk"), function(v) {
  m <- cm[cm$variable == v, ]
  t <- data.frame(m$wave * 1000 + m$code, Freq = m$count)
  names(t)[1] <- paste0("cal_", v)
  t
})
names(pops) <- paste0("cal_", c("age_group", "sex", "wijk"))
rkc <- rake(des, list(~cal_age_group, ~cal_sex, ~cal_wijk), unname(pops), control = ctrl)
add_case("changes_panel_raked", "changes_panel",
  "rake(svydesign(ids = ~resp_id, weights = ~base_weight, data = changes_panel), list(~cal_age_group, ~cal_sex, ~cal_wijk), pops (changes_margins.csv, code = wave * 1000 + code), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "base_weight", cluster = "resp_id"),
  calibration = list(kind = "rake", margins = margins_py(pops)),
  crossed_with = "wave",
  dvr = stacked_dvr(rkc), trend = stacked_trends(rkc))

write_reference("comparisons.json", cases = cases)
