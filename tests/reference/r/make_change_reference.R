# Reference values for the change between two waves of an overlapping panel
# (tests/estimate/test_changes_reference.py). R survey 4.1-1, run from the
# project root:
#
#   Rscript tests/reference/r/make_change_reference.R
#
# Writes (all committed; CI has no R):
#   tests/reference/data/changes_panel.csv    synthetic stacked panel, 3 waves
#   tests/reference/data/changes_margins.csv  population margins per wave
#   tests/reference/changes.json              reference values, 17 significant digits,
#                                             with the R expression beside each value
#
# Method (as the estimate stage): the rows of both waves are stacked, the
# respondent is the cluster, the design is raked to the population margins of
# each wave (margins crossed with wave), each wave's proportion is a ratio on
# that stacked design and the change is svycontrast() of the two ratios.
# The indicator outcomes are coded here independently of survey_pipeline/indicators.py,
# following the spec rules: success -> 1, other answer -> 0, "weet niet" (99) ->
# 0 or NA per the indicator, "geen antwoord" (98) -> NA, routed past (-1) -> 0
# when a filter said "nee" or "weet niet", NA when a filter said "geen antwoord".

suppressPackageStartupMessages({
  library(survey)
})
stopifnot(packageVersion("survey") == "4.1.1")
options(survey.lonely.psu = "adjust")

set.seed(20211115)
fmt <- function(x) if (is.na(x)) "null" else sprintf("%.17g", x)

# ---- synthetic panel -------------------------------------------------------
waves <- c(2019, 2020, 2021)
n_members <- 700
members <- data.frame(
  resp_id = seq_len(n_members),
  wijk = sample(1:4, n_members, replace = TRUE, prob = c(0.4, 0.3, 0.2, 0.1)),
  age_group = sample(1:4, n_members, replace = TRUE, prob = c(0.2, 0.25, 0.3, 0.25)),
  sex = sample(1:2, n_members, replace = TRUE),
  trait = rnorm(n_members)
)
# Participation: about 2/3 of the members answer in two or three waves.
takes_part <- matrix(runif(n_members * 3) < 0.62, ncol = 3)
takes_part[rowSums(takes_part) == 0, 1] <- TRUE

special <- function(x, p_dk, p_na) {
  u <- runif(length(x))
  x[u < p_dk] <- 99
  x[u >= p_dk & u < p_dk + p_na] <- 98
  x
}

rows <- list()
for (j in seq_along(waves)) {
  m <- members[takes_part[, j], ]
  k <- nrow(m)
  shift <- 0.25 * (j - 1)
  heard <- ifelse(runif(k) < plogis(0.9 + 1.3 * m$trait + shift + 0.2 * (m$age_group - 2)), 1, 2)
  heard <- special(heard, 0.04, 0.03)
  contact <- ifelse(runif(k) < plogis(-0.7 + 1.1 * m$trait + 0.5 * shift), 1, 2)
  contact <- special(contact, 0.05, 0.03)
  contact[heard != 1] <- -1
  helped <- ifelse(runif(k) < plogis(1.3 + 0.6 * m$trait), 1, 2)
  helped <- special(helped, 0.04, 0.04)
  helped[contact != 1] <- -1
  base_weight <- round(exp(rnorm(k, 0, 0.35)) * (1 + 0.3 * (m$age_group == 1)), 6)
  rows[[j]] <- data.frame(resp_id = m$resp_id, wave = waves[j], wijk = m$wijk, age_group = m$age_group,
                          sex = m$sex, heard = heard, contact = contact, helped = helped,
                          base_weight = base_weight)
}
panel <- do.call(rbind, rows)
panel <- panel[order(panel$wave, panel$resp_id), ]
write.csv(panel, "tests/reference/data/changes_panel.csv", row.names = FALSE)

# Population margins: sums of one joint table per wave, so every margin of a wave has the same total.
margin_rows <- list()
for (j in seq_along(waves)) {
  joint <- expand.grid(wijk = 1:4, age_group = 1:4, sex = 1:2)
  joint$count <- round(1000 * c(4, 3, 2, 1)[joint$wijk] * c(3, 2.5, 2.5, 2)[joint$age_group] *
                         c(0.49, 0.51)[joint$sex] * (1 + 0.01 * (j - 1)) * exp(rnorm(nrow(joint), 0, 0.1)))
  for (v in c("age_group", "sex", "wijk")) {
    t <- aggregate(joint$count, by = list(code = joint[[v]]), FUN = sum)
    margin_rows[[length(margin_rows) + 1]] <- data.frame(wave = waves[j], variable = v, code = t$code,
                                                         count = t$x)
  }
}
margins <- do.call(rbind, margin_rows)
write.csv(margins, "tests/reference/data/changes_margins.csv", row.names = FALSE)

# ---- indicator outcomes (1 / 0 / NA) and bases ------------------------------
outcome <- function(d, indicator) {
  switch(indicator,
    heard = ifelse(d$heard == 1, 1, ifelse(d$heard %in% c(2, 99), 0, NA)),
    contact_of_heard = ifelse(d$contact == 1, 1, ifelse(d$contact == 2, 0, NA)),
    contact_of_residents = ifelse(d$contact == 1, 1, ifelse(d$contact == 2 | d$heard %in% c(2, 99), 0, NA)),
    helped_of_contact = ifelse(d$helped == 1, 1, ifelse(d$helped == 2, 0, NA)),
    helped_of_residents = ifelse(d$helped == 1, 1,
                                 ifelse(d$helped == 2 | d$contact %in% c(2, 99) | d$heard %in% c(2, 99), 0, NA))
  )
}
in_base <- function(d, indicator) {
  switch(indicator,
    heard = rep(TRUE, nrow(d)), contact_of_residents = rep(TRUE, nrow(d)),
    helped_of_residents = rep(TRUE, nrow(d)),
    contact_of_heard = d$heard == 1,
    helped_of_contact = d$contact == 1
  )
}

# ---- one change ------------------------------------------------------------
change <- function(indicator, from, to, by = NULL, level = NULL, raked = TRUE) {
  d <- panel[panel$wave %in% c(from, to), ]
  y <- outcome(d, indicator)
  use <- !is.na(y) & in_base(d, indicator)
  if (!is.null(by)) use <- use & d[[by]] == level
  d$den_from <- as.numeric(use & d$wave == from)
  d$den_to <- as.numeric(use & d$wave == to)
  d$num_from <- ifelse(d$den_from == 1, y, 0)
  d$num_to <- ifelse(d$den_to == 1, y, 0)
  for (v in c("age_group", "sex", "wijk")) d[[paste0("cal_", v)]] <- factor(d$wave * 1000 + d[[v]])
  des <- svydesign(ids = ~resp_id, weights = ~base_weight, data = d)
  if (raked) {
    pops <- lapply(c("age_group", "sex", "wijk"), function(v) {
      m <- margins[margins$variable == v & margins$wave %in% c(from, to), ]
      t <- data.frame(factor(m$wave * 1000 + m$code), Freq = m$count)
      names(t)[1] <- paste0("cal_", v)
      t
    })
    des <- rake(des, list(~cal_age_group, ~cal_sex, ~cal_wijk), pops,
                control = list(maxit = 100, epsilon = 1e-10))
  }
  r <- svyratio(~num_from + num_to, ~den_from + den_to, des, covmat = TRUE)
  ctr <- svycontrast(r, c("num_to/den_to" = 1, "num_from/den_from" = -1))
  est <- coef(r)
  diff <- as.numeric(coef(ctr))
  se <- as.numeric(SE(ctr))
  df <- degf(subset(des, den_from == 1 | den_to == 1))
  t_q <- qt(0.975, df)
  p_value <- 2 * pt(-abs(diff / se), df)
  design_call <- if (raked) {
    "rake(svydesign(ids = ~resp_id, weights = ~base_weight, data = d), list(~cal_age_group, ~cal_sex, ~cal_wijk), pops, control = list(maxit = 100, epsilon = 1e-10))"
  } else {
    "svydesign(ids = ~resp_id, weights = ~base_weight, data = d)"
  }
  ratio_call <- "r <- svyratio(~num_from + num_to, ~den_from + den_to, des, covmat = TRUE)"
  ctr_call <- "ctr <- svycontrast(r, c('num_to/den_to' = 1, 'num_from/den_from' = -1))"
  value <- function(x, call) sprintf('{"value": %s, "r": "%s"}', fmt(x), call)
  fields <- c(
    sprintf('"indicator": "%s"', indicator),
    sprintf('"wave_from": %d', from), sprintf('"wave_to": %d', to),
    sprintf('"by": %s', if (is.null(by)) "null" else sprintf('"%s"', by)),
    sprintf('"level": %s', if (is.null(level)) "null" else fmt(level)),
    sprintf('"raked": %s', if (raked) "true" else "false"),
    sprintf('"design": "%s"', design_call),
    sprintf('"calls": ["%s", "%s"]', ratio_call, ctr_call),
    sprintf('"n_from": %d', sum(d$den_from)), sprintf('"n_to": %d', sum(d$den_to)),
    sprintf('"estimate_from": %s', value(est["num_from/den_from"], "coef(r)['num_from/den_from']")),
    sprintf('"estimate_to": %s', value(est["num_to/den_to"], "coef(r)['num_to/den_to']")),
    sprintf('"difference": %s', value(diff, "coef(ctr)")),
    sprintf('"se": %s', value(se, "SE(ctr)")),
    sprintf('"df": %s', value(df, "degf(subset(des, den_from == 1 | den_to == 1))")),
    sprintf('"ci_lower": %s', value(diff - t_q * se, "coef(ctr) - qt(0.975, df) * SE(ctr)")),
    sprintf('"ci_upper": %s', value(diff + t_q * se, "coef(ctr) + qt(0.975, df) * SE(ctr)")),
    sprintf('"p_value": %s', value(p_value, "2 * pt(-abs(coef(ctr) / SE(ctr)), df)"))
  )
  paste0("    {", paste(fields, collapse = ", "), "}")
}

cases <- c(
  change("heard", 2019, 2020),
  change("heard", 2020, 2021),
  change("heard", 2019, 2021),
  change("contact_of_heard", 2020, 2021),
  change("contact_of_residents", 2019, 2021),
  change("helped_of_contact", 2019, 2020),
  change("helped_of_residents", 2020, 2021),
  change("heard", 2019, 2020, by = "sex", level = 1),
  change("heard", 2019, 2020, by = "sex", level = 2),
  change("contact_of_residents", 2019, 2020, by = "wijk", level = 3),
  change("heard", 2019, 2020, raked = FALSE),
  change("contact_of_heard", 2019, 2021, raked = FALSE)
)
json <- paste0(
  "{\n",
  '  "generated_by": "Rscript tests/reference/r/make_change_reference.R",\n',
  sprintf('  "r_version": "%s", "survey_version": "%s",\n', R.version.string, packageVersion("survey")),
  '  "cases": [\n', paste(cases, collapse = ",\n"), "\n  ]\n}\n"
)
writeLines(json, "tests/reference/changes.json", sep = "")
cat("wrote tests/reference/changes.json with", length(cases), "cases\n")
