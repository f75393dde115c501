# Regenerate the R survey reference values used by tests/core.
#
#   cd tests/reference && Rscript r/make_reference.R
#
# Needs R with survey 4.1-1 and jsonlite. Writes data/*.csv (R's api and nhanes
# example data, and synthetic data generated here with a fixed seed) and
# proportions.json, raking.json, differences.json. Every value is printed with
# sprintf("%.17g") and stored next to the R call that produced it.

suppressMessages({
  library(survey)
  library(jsonlite)
})
stopifnot(packageVersion("survey") == "4.1.1")
options(survey.adjust.domain.lonely = FALSE, warn = 1)

fmt <- function(x) sprintf("%.17g", as.numeric(x))
dq <- function(x) paste(deparse(x, width.cutoff = 500L), collapse = "")

data(api)
data(nhanes)
dir.create("data", showWarnings = FALSE)
# Two derived columns for the fpc-as-fraction and small-weights cases.
apistrat$frac <- as.vector(table(apistrat$stype)[apistrat$stype]) / apistrat$fpc
apistrat$pw_small <- apistrat$pw / 1000
write.csv(apistrat, "data/apistrat.csv", row.names = FALSE)
write.csv(apiclus1, "data/apiclus1.csv", row.names = FALSE)
write.csv(apiclus2, "data/apiclus2.csv", row.names = FALSE)
write.csv(nhanes, "data/nhanes.csv", row.names = FALSE)

# ---------------------------------------------------------------- synthetic data
set.seed(20240517)

# Panel: 1200 residents, two waves, about half of them in both; unequal base weights.
n_resp <- 1200
people <- data.frame(
  resp_id = 1:n_resp,
  age_group = sample(1:4, n_resp, TRUE, prob = c(0.10, 0.20, 0.30, 0.40)),
  sex = sample(1:2, n_resp, TRUE, prob = c(0.42, 0.58)),
  wijk = sample(1:8, n_resp, TRUE, prob = c(3, 2, 2, 1, 1, 1, 0.5, 0.5)),
  w0 = round(runif(n_resp, 0.5, 2.5), 3),
  u = rnorm(n_resp, sd = 1.5)  # person effect: answers correlate across waves
)
waves <- lapply(c(2020, 2021), function(wave) {
  inwave <- runif(n_resp) < 0.72
  p <- people[inwave, ]
  k <- nrow(p)
  lp <- -0.4 + 0.35 * p$age_group + 0.2 * (p$sex == 2) + 0.25 * (wave == 2021) + p$u
  heard <- ifelse(runif(k) < plogis(lp), 1, 2)
  heard[runif(k) < 0.05] <- 99
  heard[runif(k) < 0.03] <- NA
  contact <- ifelse(runif(k) < plogis(-0.8 + 0.15 * p$wijk + p$u), 1, 2)
  contact[heard != 1 | is.na(heard)] <- NA
  contact[!is.na(contact) & runif(k) < 0.04] <- 99
  helped <- ifelse(runif(k) < 0.7 & p$wijk != 8, 1, 2)
  helped[is.na(contact) | contact != 1] <- NA
  cbind(p[, setdiff(names(p), "u")], wave = wave, heard = heard, contact = contact, helped = helped)
})
panel <- do.call(rbind, waves)
panel <- panel[order(panel$wave, panel$resp_id), ]

pop_age <- data.frame(age_group = 1:4, Freq = c(21000, 24000, 19000, 16000))
pop_sex <- data.frame(sex = 1:2, Freq = c(39500, 40500))
pop_wijk <- data.frame(wijk = 1:8, Freq = c(18000, 13000, 12000, 9000, 8000, 8000, 6000, 6000))
ctrl <- list(maxit = 100, epsilon = 1e-10)
panel$w <- NA_real_
for (wv in c(2020, 2021)) {
  rows <- panel$wave == wv
  dw <- svydesign(ids = ~1, weights = ~w0, data = panel[rows, ])
  rw <- rake(dw, list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = ctrl)
  panel$w[rows] <- weights(rw)
}
write.csv(panel, "data/panel.csv", row.names = FALSE, na = "")

# Stratified clustered data with a lonely-PSU stratum (5) and a certainty stratum (6).
strat <- do.call(rbind, lapply(1:6, function(h) {
  npsu <- c(3, 2, 4, 2, 1, 2)[h]
  do.call(rbind, lapply(1:npsu, function(j) {
    m <- sample(4:9, 1)
    data.frame(stratum = h, psu = j, wt = round(runif(m, 5, 40), 2))
  }))
}))
strat$popsize <- c(30, 12, 50, 9, 6, 2)[strat$stratum]
strat$y <- ifelse(runif(nrow(strat)) < 0.4 + 0.05 * strat$stratum, 1, 0)
strat$y[runif(nrow(strat)) < 0.06] <- NA
strat$grp <- ifelse(strat$stratum %in% c(5, 6), "a", sample(c("a", "b"), nrow(strat), TRUE))
strat$ps <- ifelse(runif(nrow(strat)) < 0.5, "p", "q")
write.csv(strat, "data/strat.csv", row.names = FALSE, na = "")

# ---------------------------------------------------------------- helpers
read_data <- function(name) {
  read.csv(file.path("data", paste0(name, ".csv")), stringsAsFactors = FALSE)
}

# Domain indicator as in SurveyDesign.proportion: answered, not excluded, in `where`.
domain_of <- function(df, variable, exclude, where) {
  dom <- !is.na(df[[variable]])
  if (length(exclude)) dom <- dom & !(df[[variable]] %in% unlist(exclude))
  for (v in names(where)) dom <- dom & (df[[v]] %in% unlist(where[[v]]))
  dom
}

domain_text <- function(variable, exclude, where, by = NULL, level = NULL) {
  parts <- sprintf("!is.na(%s)", variable)
  if (length(exclude)) parts <- c(parts, sprintf("!(%s %%in%% %s)", variable, dq(unlist(exclude))))
  for (v in names(where)) parts <- c(parts, sprintf("%s %%in%% %s", v, dq(unlist(where[[v]]))))
  if (!is.null(by)) parts <- c(parts, sprintf("%s == %s", by, dq(level)))
  paste(parts, collapse = " & ")
}

ci_methods <- c(logit = "xlogit", beta = "beta", wald = "mean")

safe <- function(expr) tryCatch(expr, error = function(e) structure(conditionMessage(e), class = "r_error"))

one_domain <- function(des, df, variable, success, dom, dom_text, lonely) {
  options(survey.lonely.psu = lonely)
  ycall <- sprintf("~as.numeric(%s %%in%% %s)", variable, dq(unlist(success)))
  if (sum(dom) == 0) {
    return(list(n = 0, r_error = "R: subset is empty, svymean/svyciprop cannot be computed"))
  }
  sub <- des[dom, ]
  f <- as.formula(ycall)
  m <- safe(svymean(f, sub, deff = TRUE))
  if (inherits(m, "r_error")) return(list(n = sum(dom), r_error = as.character(m)))
  rec <- list(
    n = sum(dom),
    r_mean_call = sprintf("svymean(%s, subset(des, %s), deff = TRUE)", ycall, dom_text),
    estimate = fmt(coef(m)[1]),
    se = fmt(SE(m)[1]),
    deff = fmt(deff(m)[1]),
    r_df_call = sprintf("degf(subset(des, %s))", dom_text),
    df = fmt(degf(sub)),
    sum_weights = fmt(sum(weights(sub, "sampling")))
  )
  if (sum(weights(sub, "sampling")) <= sum(weights(sub, "sampling") != 0)) {
    mr <- svymean(f, sub, deff = "replace")
    rec$r_deff_call <- sprintf("svymean(%s, subset(des, %s), deff = \"replace\")", ycall, dom_text)
    rec$deff <- fmt(deff(mr)[1])
  }
  for (py in names(ci_methods)) {
    ci <- safe(svyciprop(f, sub, method = ci_methods[[py]]))
    key <- paste0("ci_", py)
    call <- sprintf("svyciprop(%s, subset(des, %s), method = \"%s\")", ycall, dom_text, ci_methods[[py]])
    if (inherits(ci, "r_error")) {
      rec[[key]] <- list(call = call, r_error = as.character(ci))
    } else {
      rec[[key]] <- list(call = call, lower = fmt(attr(ci, "ci")[1]), upper = fmt(attr(ci, "ci")[2]))
    }
  }
  rec
}

# One reference query: SurveyDesign.proportion arguments plus R's answer per domain.
prop_query <- function(des, df, lonely, variable, success, exclude = NULL, where = list(), by = NULL) {
  base <- domain_of(df, variable, exclude, where)
  query <- list(variable = variable, success = success, exclude = exclude, where = where, by = by)
  if (is.null(by)) {
    res <- list(one_domain(des, df, variable, success, base, domain_text(variable, exclude, where), lonely))
    names(res) <- "_all"
  } else {
    levels <- sort(unique(df[[by]][!is.na(df[[by]])]))
    res <- lapply(levels, function(l) {
      one_domain(des, df, variable, success, base & !is.na(df[[by]]) & df[[by]] == l,
                 domain_text(variable, exclude, where, by, l), lonely)
    })
    names(res) <- as.character(levels)
  }
  list(query = query, domains = res)
}

margins_py <- function(pops) {
  lapply(pops, function(p) lapply(seq_len(nrow(p)), function(i) list(p[i, 1], p[i, 2])))
}

# ---------------------------------------------------------------- proportion cases
cases <- list()
add_case <- function(id, data, design_r, design_py, des, df, queries, calibration = NULL, lonely = "adjust",
                     note = NULL) {
  cases[[id]] <<- list(data = data, design_r = design_r, design_py = design_py, lonely_psu = lonely,
                       calibration = calibration, note = note, queries = queries)
}

# apistrat: stratified, fpc as population counts and as sampling fractions.
ds <- read_data("apistrat")
options(survey.lonely.psu = "adjust")
des <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = ds)
add_case("apistrat", "apistrat",
  "svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)",
  list(weights = "pw", strata = "stype", fpc = "fpc"), des, ds, list(
    prop_query(des, ds, "adjust", "sch.wide", list("Yes")),
    prop_query(des, ds, "adjust", "sch.wide", list("Yes"), by = "stype"),
    prop_query(des, ds, "adjust", "comp.imp", list("Yes"), where = list(awards = list("Yes"))),
    prop_query(des, ds, "adjust", "awards", list("Yes"), where = list(stype = list("E", "M")), by = "cname")
  ))
desf <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~frac, data = ds)
add_case("apistrat_fraction", "apistrat",
  "svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~frac, data = apistrat) # frac = n_h / N_h",
  list(weights = "pw", strata = "stype", fpc = "frac"), desf, ds, list(
    prop_query(desf, ds, "adjust", "awards", list("Yes"), by = "stype")
  ))
dss <- svydesign(id = ~1, strata = ~stype, weights = ~pw_small, data = ds)
add_case("apistrat_small_weights", "apistrat",
  "svydesign(id = ~1, strata = ~stype, weights = ~pw_small, data = apistrat) # pw_small = pw / 1000",
  list(weights = "pw_small", strata = "stype"), dss, ds, list(
    prop_query(dss, ds, "adjust", "sch.wide", list("Yes"), by = "stype")
  ), note = "weights sum to less than n: R's deff=TRUE is NA; reference deff uses deff = \"replace\"")

# apiclus1: one-stage cluster sample; raked and post-stratified versions.
dc <- read_data("apiclus1")
des <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = dc)
qs <- function(des) list(
  prop_query(des, dc, "adjust", "awards", list("Yes")),
  prop_query(des, dc, "adjust", "awards", list("Yes"), by = "stype"),
  prop_query(des, dc, "adjust", "both", list("Yes"), where = list(sch.wide = list("Yes")), by = "stype")
)
add_case("apiclus1", "apiclus1", "svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1)",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), des, dc, qs(des))
pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
pop_sw <- data.frame(sch.wide = c("No", "Yes"), Freq = c(1000, 5194))
rk <- rake(des, list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = ctrl)
add_case("apiclus1_raked", "apiclus1",
  "rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), rk, dc, qs(rk),
  calibration = list(kind = "rake", margins = margins_py(list(stype = pop_stype, sch.wide = pop_sw))))
ps <- postStratify(des, ~stype, pop_stype)
add_case("apiclus1_poststratified", "apiclus1",
  "postStratify(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), ~stype, pop_stype)",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), ps, dc, qs(ps),
  calibration = list(kind = "poststratify", variables = list("stype"), totals = margins_py(list(pop_stype))[[1]]))

pop_cells <- data.frame(stype = rep(c("E", "H", "M"), 2), sch.wide = rep(c("No", "Yes"), each = 3),
                        Freq = c(800, 250, 200, 3621, 505, 818))
ps2 <- postStratify(des, ~stype + sch.wide, pop_cells)
add_case("apiclus1_poststratified_cells", "apiclus1",
  "postStratify(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), ~stype + sch.wide, pop_cells)",
  list(weights = "pw", cluster = "dnum", fpc = "fpc"), ps2, dc, qs(ps2),
  calibration = list(kind = "poststratify", variables = list("stype", "sch.wide"),
                     totals = lapply(seq_len(nrow(pop_cells)), function(i)
                       list(list(pop_cells$stype[i], pop_cells$sch.wide[i]), pop_cells$Freq[i]))))

# apiclus2: first stage only (SurveyDesign handles the first stage of multistage designs).
d2 <- read_data("apiclus2")
des <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc1, data = d2)
add_case("apiclus2_first_stage", "apiclus2", "svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc1, data = apiclus2)",
  list(weights = "pw", cluster = "dnum", fpc = "fpc1"), des, d2, list(
    prop_query(des, d2, "adjust", "sch.wide", list("Yes"), by = "stype"),
    prop_query(des, d2, "adjust", "awards", list("Yes"), where = list(stype = list("H")))
  ))

# nhanes: stratified, two PSUs per stratum; uncalibrated and raked.
dn <- read_data("nhanes")
des <- svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = dn)
nq <- function(des) list(
  prop_query(des, dn, "adjust", "HI_CHOL", list(1)),
  prop_query(des, dn, "adjust", "HI_CHOL", list(1), by = "agecat"),
  prop_query(des, dn, "adjust", "HI_CHOL", list(1), where = list(RIAGENDR = list(2)), by = "race")
)
add_case("nhanes", "nhanes",
  "svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes)",
  list(weights = "WTMEC2YR", strata = "SDMVSTRA", cluster = "SDMVPSU"), des, dn, nq(des))
pop_agecat <- data.frame(agecat = c("(0,19]", "(19,39]", "(39,59]", "(59,Inf]"),
                         Freq = c(80e6, 82e6, 74e6, 50e6))
pop_gender <- data.frame(RIAGENDR = 1:2, Freq = c(140e6, 146e6))
pop_race <- data.frame(race = 1:4, Freq = c(40e6, 190e6, 36e6, 20e6))
rkn <- rake(des, list(~agecat, ~RIAGENDR, ~race), list(pop_agecat, pop_gender, pop_race), control = ctrl)
add_case("nhanes_raked", "nhanes",
  "rake(svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes), list(~agecat, ~RIAGENDR, ~race), list(pop_agecat, pop_gender, pop_race), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "WTMEC2YR", strata = "SDMVSTRA", cluster = "SDMVPSU"), rkn, dn, nq(rkn),
  calibration = list(kind = "rake", margins = margins_py(list(agecat = pop_agecat, RIAGENDR = pop_gender, race = pop_race))))

# Synthetic panel wave 2020: raked from unequal base weights, every row its own PSU.
p20 <- panel[panel$wave == 2020, ]
des <- svydesign(ids = ~1, weights = ~w0, data = p20)
rkp <- rake(des, list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = ctrl)
pq <- function(des) list(
  prop_query(des, p20, "adjust", "heard", list(1), exclude = list(99)),
  prop_query(des, p20, "adjust", "heard", list(1), exclude = list(99), by = "wijk"),
  prop_query(des, p20, "adjust", "contact", list(1), where = list(heard = list(1)), by = "wijk"),
  prop_query(des, p20, "adjust", "helped", list(1), where = list(contact = list(1)), by = "age_group"),
  prop_query(des, p20, "adjust", "helped", list(1), where = list(contact = list(1), wijk = list(8)))
)
panel_filter <- list(wave = list(2020))
add_case("panel2020", "panel", "svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020))",
  list(weights = "w0", filter = panel_filter), des, p20, pq(des))
add_case("panel2020_raked", "panel",
  "rake(svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020)), list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "w0", filter = panel_filter), rkp, p20, pq(rkp),
  calibration = list(kind = "rake", margins = margins_py(list(age_group = pop_age, sex = pop_sex, wijk = pop_wijk))))

# Lonely PSUs: stratum 5 has one PSU, stratum 6 is sampled completely (fpc = n).
st <- read.csv("data/strat.csv", stringsAsFactors = FALSE)
pop_ps <- data.frame(ps = c("p", "q"), Freq = c(2500, 2100))
for (lonely in c("adjust", "average", "remove", "certainty", "fail")) {
  for (with_fpc in c(FALSE, TRUE)) {
    options(survey.lonely.psu = lonely)
    des <- if (with_fpc) {
      svydesign(id = ~psu, strata = ~stratum, weights = ~wt, fpc = ~popsize, nest = TRUE, data = st)
    } else {
      svydesign(id = ~psu, strata = ~stratum, weights = ~wt, nest = TRUE, data = st)
    }
    call <- sprintf("options(survey.lonely.psu = \"%s\"); svydesign(id = ~psu, strata = ~stratum, weights = ~wt%s, nest = TRUE, data = strat)",
                    lonely, if (with_fpc) ", fpc = ~popsize" else "")
    py <- list(weights = "wt", strata = "stratum", cluster = "psu", lonely_psu = lonely)
    if (with_fpc) py$fpc <- "popsize"
    lq <- function(des) list(
      prop_query(des, st, lonely, "y", list(1)),
      prop_query(des, st, lonely, "y", list(1), by = "grp")
    )
    id <- sprintf("strat_%s%s", lonely, if (with_fpc) "_fpc" else "")
    add_case(id, "strat", call, py, des, st, lq(des), lonely = lonely)
    psd <- postStratify(des, ~ps, pop_ps)
    add_case(paste0(id, "_poststratified"), "strat", paste0("postStratify(", call, ", ~ps, pop_ps)"), py, psd, st,
      lq(psd), lonely = lonely,
      calibration = list(kind = "poststratify", variables = list("ps"), totals = margins_py(list(pop_ps))[[1]]))
  }
}

# Edge cases on the raked panel: p = 0 (wijk 8 never helped), p = 1, one row, empty.
one_row <- p20$resp_id[!is.na(p20$heard) & p20$heard == 1][1]
add_case("panel2020_raked_edges", "panel",
  "rake(svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020)), list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = list(maxit = 100, epsilon = 1e-10))",
  list(weights = "w0", filter = panel_filter), rkp, p20, list(
    prop_query(rkp, p20, "adjust", "helped", list(1), where = list(wijk = list(8))),
    prop_query(rkp, p20, "adjust", "helped", list(1, 2), where = list(wijk = list(8))),
    prop_query(rkp, p20, "adjust", "heard", list(1), where = list(resp_id = list(one_row))),
    prop_query(rkp, p20, "adjust", "heard", list(1), where = list(wijk = list(99)))
  ),
  calibration = list(kind = "rake", margins = margins_py(list(age_group = pop_age, sex = pop_sex, wijk = pop_wijk))),
  note = "R gives no interval (NaN) at p = 0 / 1 and fails on an empty domain; tests check the documented behaviour")

# ---------------------------------------------------------------- raking weights
raking <- list()
add_rake <- function(id, data, filter, weights, pops, des_call, rk) {
  raking[[id]] <<- list(data = data, filter = filter, weights = weights,
                        margins = margins_py(pops),
                        r_call = des_call, weights_r = fmt(weights(rk)))
}
add_rake("panel2020_unequal_base", "panel", panel_filter, "w0", list(age_group = pop_age, sex = pop_sex, wijk = pop_wijk),
  "weights(rake(svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020)), list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = list(maxit = 100, epsilon = 1e-10)))",
  rkp)
des <- svydesign(ids = ~1, weights = ~1, data = p20)
rk_eq <- rake(des, list(~wijk, ~sex, ~age_group), list(pop_wijk, pop_sex, pop_age), control = ctrl)
add_rake("panel2020_equal_base_other_order", "panel", panel_filter, NULL, list(wijk = pop_wijk, sex = pop_sex, age_group = pop_age),
  "weights(rake(svydesign(ids = ~1, weights = ~1, data = subset(panel, wave == 2020)), list(~wijk, ~sex, ~age_group), list(pop_wijk, pop_sex, pop_age), control = list(maxit = 100, epsilon = 1e-10)))",
  rk_eq)
add_rake("apiclus1", "apiclus1", NULL, "pw", list(stype = pop_stype, sch.wide = pop_sw),
  "weights(rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype, ~sch.wide), list(pop_stype, pop_sw), control = list(maxit = 100, epsilon = 1e-10)))",
  rk)
add_rake("nhanes", "nhanes", NULL, "WTMEC2YR", list(agecat = pop_agecat, RIAGENDR = pop_gender, race = pop_race),
  "weights(rake(svydesign(id = ~SDMVPSU, strata = ~SDMVSTRA, weights = ~WTMEC2YR, nest = TRUE, data = nhanes), list(~agecat, ~RIAGENDR, ~race), list(pop_agecat, pop_gender, pop_race), control = list(maxit = 100, epsilon = 1e-10)))",
  rkn)

# ---------------------------------------------------------------- wave differences
# Stacked panel, respondent as cluster: each wave's share as a ratio on the full design,
# svycontrast of the two; df = degf of the design restricted to both waves' domains.
options(survey.lonely.psu = "adjust")
differences <- list()
diff_query <- function(variable, success, exclude = NULL, where = list(), by = NULL, a = 2020, b = 2021) {
  d <- panel
  base <- domain_of(d, variable, exclude, where)
  levels <- if (is.null(by)) "_all" else sort(unique(d[[by]]))
  res <- lapply(levels, function(l) {
    dom <- base
    if (!is.null(by)) dom <- dom & d[[by]] == l
    d$num_a <- as.numeric(dom & d$wave == a & d[[variable]] %in% unlist(success))
    d$den_a <- as.numeric(dom & d$wave == a)
    d$num_b <- as.numeric(dom & d$wave == b & d[[variable]] %in% unlist(success))
    d$den_b <- as.numeric(dom & d$wave == b)
    des <- svydesign(ids = ~resp_id, weights = ~w, data = d)
    r <- svyratio(~num_a + num_b, ~den_a + den_b, des, covmat = TRUE)
    con <- svycontrast(r, c(-1, 0, 0, 1))
    df <- degf(subset(des, den_a == 1 | den_b == 1))
    est <- coef(con)[1]
    se <- SE(con)[1]
    list(
      r_call = "svycontrast(svyratio(~num_a + num_b, ~den_a + den_b, svydesign(ids = ~resp_id, weights = ~w, data = panel), covmat = TRUE), c(-1, 0, 0, 1))",
      r_domain = domain_text(variable, exclude, where, by, if (is.null(by)) NULL else l),
      estimate_from = fmt(coef(r)[1]), estimate_to = fmt(coef(r)[4]),
      difference = fmt(est), se = fmt(se),
      r_df_call = "degf(subset(des, den_a == 1 | den_b == 1))", df = fmt(df),
      ci_lower = fmt(est + qt(0.025, df) * se), ci_upper = fmt(est + qt(0.975, df) * se),
      r_p_call = "2 * pt(-abs(difference / se), df)", p_value = fmt(2 * pt(-abs(est / se), df)),
      se_independent_waves = fmt(sqrt(vcov(r)[1, 1] + vcov(r)[4, 4]))
    )
  })
  names(res) <- as.character(levels)
  list(query = list(variable = variable, success = success, exclude = exclude, where = where, by = by,
                    between = list("wave", a, b)),
       domains = res)
}
differences <- list(
  data = "panel",
  design_r = "svydesign(ids = ~resp_id, weights = ~w, data = panel)",
  design_py = list(weights = "w", cluster = "resp_id"),
  queries = list(
    diff_query("heard", list(1), exclude = list(99)),
    diff_query("heard", list(1), exclude = list(99), by = "wijk"),
    diff_query("contact", list(1), where = list(heard = list(1))),
    diff_query("contact", list(1), where = list(heard = list(1)), by = "age_group")
  )
)

meta <- list(r_version = R.version.string, survey_version = as.character(packageVersion("survey")),
             options = "survey.adjust.domain.lonely = FALSE; survey.ultimate.cluster = FALSE")
write_json_file <- function(x, file) {
  writeLines(toJSON(c(list(meta = meta), x), auto_unbox = TRUE, null = "null", pretty = TRUE, digits = NA), file)
}
write_json_file(list(cases = cases), "proportions.json")
write_json_file(list(raking = raking), "raking.json")
write_json_file(list(differences = differences), "differences.json")
# ---------------------------------------------------------------- publication rule
# The NCHS Data Presentation Standards for Proportions (Parker et al. 2017), by hand:
# n_eff = min(n, p(1-p)/se^2) (n at p = 0 or 1), adjusted for the degrees of freedom
# with the domain's own sample size, n_eff_df = n_eff * (qt(0.975, n - 1) / qt(0.975, df))^2,
# then the Clopper-Pearson form at 95%. R's svyciprop(method = "beta") is stored beside
# it: it uses the uncapped n_eff and, on a calibrated design, nrow() of the whole wave.
nchs_domain <- function(des, variable, success, by_value, by = "wijk") {
  v <- des$variables[[variable]]
  des$variables$y_success <- as.numeric(v %in% unlist(success))
  keep <- !is.na(v) & v != 99 & des$variables[[by]] == by_value
  sub <- subset(des, keep)
  m <- svymean(~y_success, sub)
  p <- as.numeric(coef(m)); se <- as.numeric(SE(m))
  n <- sum(keep); df <- degf(sub)
  n_eff <- if (p == 0 || p == 1) n else min(n, p * (1 - p) / se^2)
  adj <- if (df >= 1 && n - 1 >= 1) (qt(0.975, n - 1) / qt(0.975, df))^2 else 1
  m_df <- n_eff * adj
  lower <- if (p == 0) 0 else qbeta(0.025, m_df * p, m_df * (1 - p) + 1)
  upper <- if (p == 1) 1 else qbeta(0.975, m_df * p + 1, m_df * (1 - p))
  r_beta <- svyciprop(~y_success, sub, method = "beta", level = 0.95)
  list(by = by, by_value = by_value, variable = variable, success = success,
       estimate = fmt(p), se = fmt(se), n = n, df = fmt(df),
       n_eff = fmt(n_eff), n_eff_df = fmt(m_df),
       nchs_lower = fmt(lower), nchs_upper = fmt(upper),
       r_hand_call = "n_eff <- min(n, p*(1-p)/se^2); m <- n_eff*(qt(0.975, n-1)/qt(0.975, degf(sub)))^2; qbeta(0.025, m*p, m*(1-p)+1); qbeta(0.975, m*p+1, m*(1-p))",
       svyciprop_beta_lower = fmt(attr(r_beta, "ci")[1]), svyciprop_beta_upper = fmt(attr(r_beta, "ci")[2]))
}
pub_domains <- c(
  lapply(1:8, function(w) nchs_domain(rkp, "heard", list(1), w)),
  lapply(c(1, 4, 7, 8), function(w) nchs_domain(rkp, "helped", list(1), w))
)
write_json_file(list(publication_rule = list(
  design_r = "rake(svydesign(ids = ~1, weights = ~w0, data = subset(panel, wave == 2020)), list(~age_group, ~sex, ~wijk), list(pop_age, pop_sex, pop_wijk), control = list(maxit = 100, epsilon = 1e-10))",
  data = "panel", design_py = list(weights = "w0", filter = panel_filter),
  calibration = list(kind = "rake", margins = margins_py(list(age_group = pop_age, sex = pop_sex, wijk = pop_wijk))),
  domain_rule = "rows with a valid answer (not NA, not 99) in the wijk",
  domains = pub_domains)), "publication_rule.json")
cat("reference values written\n")
